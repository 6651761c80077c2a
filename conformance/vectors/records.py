"""One golden vector: a case, the reference's values, the tolerance per dtype, and what could explain a miss.

Every number is a JSON number written by Python's ``repr`` (the shortest
decimal that reads back to the same float64: at most 17 significant
digits, no digit lost). The expected values are the reference's, float64;
``tolerance[dtype]`` is, per entry, what the tolerance model allows a
faithful implementation computing in ``dtype`` (``SAFETY`` times its
running-error bound; ``suite.tolerances``), or null with the reason in
``outside_model`` where the model promises nothing in that dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS
from backprop_conformance.reference.backprop import _forward
from backprop_conformance.reference.network import params_json
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.diagnosis import COMPARED, expected, named
from backprop_conformance.suite.expectations import (
    Expected,
    OutsideModel,
    expect_forward,
    expect_loss_and_gradients,
    expect_optimizer_train,
    expect_sgd_step,
    expect_train,
)
from backprop_conformance.suite.tolerances import kink_of
from backprop_conformance.suite.variants import CATALOGUE
from backprop_conformance.vectors.catalogue import VectorCase

DTYPES = ("float64", "float32")
CALLS = ("forward", "loss_and_gradients", "sgd_step", "train")
#: The name of the one array besides the params that a comparison measures (``suite.diagnosis``'s names).
SINGLE_NAME = {"forward": "a_L", "loss_and_gradients": "J", "train": "losses"}


def _expectations(case: Case, dtype: str) -> dict[str, Expected]:
    """Return each comparison's expectation in ``dtype``, by the call it judges; raise OutsideModel."""
    train = expect_train(case, dtype) if case.optimizer is None else expect_optimizer_train(case, case.optimizer, dtype)
    return {"forward": expect_forward(case, dtype), "loss_and_gradients": expect_loss_and_gradients(case, dtype),
            "sgd_step": expect_sgd_step(case, dtype), "train": train}


def _json(expectations: dict[str, Expected], allowed: bool) -> dict[str, Any]:
    """Return the expected values (or, ``allowed``, the tolerance) of every quantity as JSON data."""
    forward, gradients, step, train = (expectations[call] for call in CALLS)
    pick = (lambda e: (e.value_allowed, e.allowed)) if allowed else (lambda e: (e.value, e.values))
    return {
        "output": np.asarray(pick(forward)[0]).tolist(),
        "loss": float(pick(gradients)[0]),
        "grads": params_json(pick(gradients)[1]),
        "step": params_json(pick(step)[1]),
        "train": {"losses": np.asarray(pick(train)[0]).tolist(), "params": params_json(pick(train)[1])},
    }


def _by_name(call: str, expectation: Expected, allowed: bool) -> dict[str, Any]:
    """Return an expectation's arrays by the names ``suite.diagnosis.expected`` uses."""
    single = expectation.value_allowed if allowed else expectation.value
    arrays = named(expectation.allowed if allowed else expectation.values) if expectation.values else {}
    return {**({SINGLE_NAME[call]: single} if call in SINGLE_NAME else {}), **arrays}


def distinguished(case: Case, expectations: dict[str, Expected]) -> list[str]:
    """Return the named variants (``suite.variants``) whose numbers on this case differ from the expected
    ones by more than the float64 tolerance somewhere: the deviations this test tells apart."""
    found = []
    for variant in CATALOGUE:
        if not variant.applies(case, "float64"):
            continue
        for call, compared in COMPARED.items():
            if not variant.changes & compared:
                continue
            wanted = expected(variant, case, call, "float64")
            values = _by_name(call, expectations[call], allowed=False)
            allowances = _by_name(call, expectations[call], allowed=True)
            if any(np.shape(wanted[name]) != np.shape(values[name])
                   or bool(np.any(np.abs(np.asarray(wanted[name]) - values[name]) > allowances[name]))
                   for name in values if name in wanted):
                found.append(variant.name)
                break
    return found


def conventions(case: Case) -> list[str]:
    """Return the reference's conventions that decide this case's numbers: a derivative taken at its kink."""
    zs, _ = _forward(case.network, case.params, case.x)
    labels = []
    for z, spec in zip(zs, case.network.activations):
        kink = kink_of(spec)
        if kink == 0.0 and bool((z == 0).any()):
            value = float(np.asarray(ACTIVATION_FUNCTIONS[spec].derivative(np.zeros(1)), dtype=np.float64)[0])
            labels.append(f"{spec}'(0) = {value:g}")
    return sorted(set(labels))


def vector_record(identifier: int, vector: VectorCase) -> dict[str, Any]:
    """Return the JSON record of one case; a case outside the model in float64 is a bug of the catalogue."""
    case = vector.case
    try:
        float64 = _expectations(case, "float64")
    except OutsideModel as reason:
        raise RuntimeError(f"vector {identifier} ({vector.comment}) is outside the tolerance model in float64: "
                           f"{reason}") from None
    tolerance: dict[str, Any] = {"float64": _json(float64, allowed=True)}
    decided_by = conventions(case)
    outside: dict[str, str] = {}
    for dtype in DTYPES[1:]:
        try:
            tolerance[dtype] = _json(_expectations(case, dtype), allowed=True)
        except OutsideModel as reason:
            tolerance[dtype], outside[dtype] = None, str(reason)
    return {
        "tcId": identifier,
        "comment": vector.comment,
        "flags": list(vector.flags),
        "network": case.network.to_json(),
        "params": params_json(case.params),
        "x": case.x.tolist(),
        "y": case.y.tolist(),
        "learning_rate": case.learning_rate,
        "batches": [batch.tolist() for batch in case.batches],
        **({} if case.optimizer is None else {"optimizer": case.optimizer.to_json()}),
        "expected": _json(float64, allowed=False),
        "tolerance": tolerance,
        "outside_model": outside,
        "conventions": decided_by,
        "variants": distinguished(case, float64),
        # Wycheproof's field: "valid", exact math; "acceptable", a convention of the reference decides.
        "result": "acceptable" if decided_by else "valid",
    }
