"""What every suite test does: compare, reject cases outside the model, record, attach a repro.

Every ratio that is asserted is recorded in the running test's result
(``suite.session``), and a failure records its cause (adapter, quantity,
array, network), the case as JSON and the repro snippet, for ``backprop
check``'s summary and ``--json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from hypothesis import note, reject

from backprop_conformance.adapters.protocol import Adapter, AdapterCallError
from backprop_conformance.suite import session
from backprop_conformance.suite.assertions import ConformanceError, Measurement, require
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import OutsideModel
from backprop_conformance.suite.repro import repro_snippet

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

    A case outside the tolerance model is rejected if Hypothesis drew it
    (Hypothesis draws another), and fails if explicit. A runnable repro
    snippet is built only when the check fails, since formatting every array
    costs more than drawing the case: for a drawn case it is attached with
    ``note()`` and the failure re-raised (Hypothesis replays the shrunk failing
    example at the end, so the note is in its report); for an explicit case it
    goes into the failure message. The snippet shows the case as it was before
    the adapter ran: a copy is kept, since an adapter may (wrongly) modify
    its inputs.
    """
    __tracebackhide__ = True
    pristine = copy.deepcopy(case)  # microseconds, against the milliseconds of formatting it
    if drawn:
        note(f"network: {case.network.describe()}")
    try:
        measurements = compare(adapter, case)
        if quantity is not None:
            measurements = [m for m in measurements if m.quantity == quantity]
        for measurement in measurements:  # what is required here, and only that
            session.record_ratio(measurement.quantity, measurement.ratio)
        return require(measurements)
    except OutsideModel as reason:
        if drawn:
            note(f"outside the tolerance model: {reason}")
            reject()
        pytest.fail(f"explicit case is outside the tolerance model: {reason}")
    except Exception as error:
        call = _CALLS[compare.__name__]
        snippet = repro_snippet(pristine, adapter.spec, call)
        session.record_failure(_failure(adapter, pristine, error, snippet, quantity, call))
        if drawn:  # any failure gets the repro (the adapter may raise), as a note of the shrunk example
            note(f"repro:\n{snippet}")
            raise
        if not isinstance(error, ConformanceError):
            raise
        raise ConformanceError(f"{error}\nrepro:\n{snippet}", error.measurement) from None


def require_method(adapter: Adapter, method: str) -> None:
    """Skip when the adapter does not provide an optional ``method`` itself."""
    if not adapter.supports(method):
        pytest.skip(f"adapter {adapter.label!r} has no {method}(); nothing of its own to check")


def _failure(
    adapter: Adapter, case: Case, error: Exception, snippet: str, quantity: str | None, call: str
) -> dict:
    """Return what a failing check records: its cause, its message, the case and the repro."""
    measurement = getattr(error, "measurement", None)
    message = str(error)
    if not isinstance(error, (ConformanceError, AdapterCallError)):
        message = f"{adapter.label}: {call}: {type(error).__name__}: {error}"
    return {
        "adapter": adapter.label,
        "quantity": measurement.quantity if measurement else quantity,
        "array": measurement.name if measurement else None,
        "network": case.network.describe(),
        "error": type(error).__name__,
        "message": message,
        "case": case.to_json(),
        "repro": snippet,
    }
