"""What every suite test does: compare, reject cases outside the model, record, attach a repro.

Every ratio that is asserted is recorded in the running test's result
(``suite.session``), and a failure records its cause (adapter, quantity,
array, network), the case as JSON and the repro snippet, for ``backprop
check``'s summary and ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import note, reject

from backprop_conformance.adapters.protocol import Adapter, AdapterCallError, Unsupported
from backprop_conformance.suite import session
from backprop_conformance.suite.assertions import ConformanceError, Measurement, require
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import OutsideModel
from backprop_conformance.suite.diagnosis import diagnosis_text, explain_failure
from backprop_conformance.suite.repro import repro_snippet

_CALLS = {
    "compare_forward": "forward",
    "compare_loss_and_gradients": "loss_and_gradients",
    "compare_sgd_step": "sgd_step",
    "compare_train": "train",
    "compare_optimizer_train": "train",
}
#: The quantity a call stands for when no single one is asked for.
QUANTITY_OF_CALL = {"forward": "output", "loss_and_gradients": "gradient", "sgd_step": "update", "train": "trajectory"}


def check(
    adapter: Adapter,
    case: Case,
    compare: Callable[[Adapter, Case], list[Measurement]],
    quantity: str | None = None,
    drawn: bool = True,
) -> float:
    """Run ``compare`` and require every measurement (of ``quantity``, if given) to pass; return the worst ratio.

    A case outside the tolerance model is rejected if Hypothesis drew it
    (Hypothesis draws another), and fails if explicit; a case the adapter
    declares it cannot do (``Unsupported``) is rejected or skipped, and
    counted as not applicable. A failing comparison is diagnosed
    (``suite.diagnosis``): the message names the variant the numbers match,
    and one the adapter follows by design (its ``conventions``) is recorded
    as a known divergence instead of failing. A runnable repro snippet is
    built only when the check fails, since formatting every array costs more
    than drawing the case: for a drawn case it is attached with ``note()``
    (Hypothesis replays the shrunk failing example last, so the note is in
    its report); for an explicit case it goes into the failure message. The
    adapter only ever had copies, so the snippet shows the case as it got it.
    """
    __tracebackhide__ = True
    call = _CALLS[compare.__name__]
    if drawn:
        note(f"network: {case.network.describe()}")
    try:
        reason = adapter.unsupported(case.network, call)  # asked first: nothing is computed for nothing
        if reason is not None:
            raise Unsupported(reason)
        measurements = compare(adapter, case)
        judged = [m for m in measurements if quantity is None or m.quantity == quantity]
        diagnosis = None
        if any(not m.passed for m in judged):  # only now: a passing case pays nothing for the diagnosis
            found, convention = explain_failure(case, call, adapter.dtype, measurements, adapter.conventions)
            if convention is not None:
                for m in judged:
                    if not m.passed:
                        session.record_known_divergence(m.quantity, convention.name)
                return 0.0
            diagnosis = found or None
        for measurement in judged:  # what is required here, and only that
            session.record_ratio(measurement.quantity, measurement.ratio)
        return require(judged, diagnosis_text(diagnosis) if diagnosis else None, diagnosis)
    except Unsupported as reason:
        session.record_not_applicable(quantity or QUANTITY_OF_CALL[call], str(reason))
        if drawn:
            note(f"not applicable: {reason}")
            reject()
        pytest.skip(f"not applicable: {reason}")
    except OutsideModel as reason:
        if drawn:
            note(f"outside the tolerance model: {reason}")
            reject()
        pytest.fail(f"explicit case is outside the tolerance model: {reason}")
    except Exception as error:
        snippet = repro_snippet(case, adapter.spec, call)
        session.record_failure(_failure(adapter, case, error, snippet, quantity, call))
        if drawn:  # any failure gets the repro (the adapter may raise), as a note of the shrunk example
            note(f"repro:\n{snippet}")
            raise
        if not isinstance(error, ConformanceError):
            raise
        raise ConformanceError(f"{error}\nrepro:\n{snippet}", error.measurement, error.diagnosis) from None


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
        "diagnosis": [variant.name for variant in getattr(error, "diagnosis", None) or []] or None,
        "case": case.to_json(),
        "repro": snippet,
    }
