"""What every suite test does: compare, reject cases outside the model, attach a repro."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import note, reject

from adapters.protocol import Adapter
from conformance.assertions import ConformanceError, Measurement, repro_snippet, require
from conformance.comparisons import OutsideModel
from conformance.strategies import Case

_CALLS = {
    "compare_forward": "forward",
    "compare_loss_and_gradients": "loss_and_gradients",
    "compare_sgd_step": "sgd_step",
    "compare_train": "train",
}


def check(
    adapter: Adapter,
    case: Case,
    compare: Callable[[Adapter, Case], list[Measurement]],
    quantity: str | None = None,
    drawn: bool = True,
) -> float:
    """Run ``compare`` and require every measurement (of ``quantity``, if given) to pass.

    For a Hypothesis-``drawn`` case the repro snippet is attached with
    ``note()`` and a case outside the tolerance model is rejected (Hypothesis
    draws another); for an explicit case the snippet goes into the failure.
    """
    __tracebackhide__ = True
    snippet = repro_snippet(case, adapter.spec, _CALLS[compare.__name__])
    if drawn:
        note(f"network: {case.network.describe()}")
        note(f"repro:\n{snippet}")
    try:
        measurements = compare(adapter, case)
    except OutsideModel as reason:
        if drawn:
            note(f"outside the tolerance model: {reason}")
            reject()
        pytest.fail(f"explicit case is outside the tolerance model: {reason}")
    if quantity is not None:
        measurements = [m for m in measurements if m.quantity == quantity]
    try:
        return require(measurements)
    except ConformanceError as error:
        if drawn:
            raise
        raise ConformanceError(f"{error}\nrepro:\n{snippet}") from None


def require_method(adapter: Adapter, method: str) -> None:
    """Skip when the adapter does not provide an optional ``method`` itself."""
    if not adapter.supports(method):
        pytest.skip(f"adapter {adapter.label!r} has no {method}(); nothing of its own to check")
