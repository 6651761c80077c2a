"""``backprop bench --suite`` counts each case's outcome as the suite judges it.

A failing comparison whose diagnosis is one of the adapter's declared
conventions is a known divergence there, not a failure: the bench's outcome
column must not report as failures what the suite passes.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.adapters import load_adapter
from backprop_conformance.bench import suite_speed
from backprop_conformance.reference import Network
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import compare_loss_and_gradients
from tests.broken_adapters import CorrectNumpy
from tests.variant_adapters import ReluOneAtZero

#: A dead relu unit (z exactly 0): relu'(0) = 1 makes dJ/dW1 nonzero where the reference's is 0.
DEAD_RELU = Case(Network((1, 1, 1), ("relu", "identity"), "mse", bias=False),
                 [(np.array([[0.0]]), None), (np.array([[0.7]]), None)], np.array([[1.3]]), np.array([[0.2]]))


class DeclaredReluOneAtZero(ReluOneAtZero):
    name = "relu'(0) = 1, declared"
    conventions = ("relu'(0) = 1",)


def _outcome(implementation) -> str:
    adapter = load_adapter(implementation)
    measurements = compare_loss_and_gradients(adapter, DEAD_RELU)
    if all(m.passed for m in measurements):
        return "pass"
    return suite_speed._failed(adapter, DEAD_RELU, measurements)


def test_a_declared_convention_is_a_known_divergence_an_undeclared_one_a_failure():
    assert _outcome(CorrectNumpy()) == "pass"
    assert _outcome(ReluOneAtZero()) == "fail"
    assert _outcome(DeclaredReluOneAtZero()) == "known divergence"


def test_the_outcome_kinds_include_known_divergence():
    result = suite_speed.suite_throughput(2, specs=("reference",))
    assert "known divergence" in result["first"]["outcomes"]["reference float64"]
