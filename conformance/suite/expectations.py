"""What the reference expects of a case in a dtype, and what the tolerance model allows: no adapter needed.

One function per comparison; each returns the reference's float64 values
and the allowance per entry (``SAFETY`` times the running-error bound of
``suite.tolerances`` for a faithful implementation in ``dtype``), by the
names the measurements use (``a_L``, ``J``, ``W1``, ``b1``, ...,
``losses``). Each raises ``OutsideModel`` where the model promises nothing
(an ambiguous kink, a saturated bce, training that diverges). Used by the
comparisons (``suite.comparisons``) and by the golden vectors
(``backprop vectors``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_conformance.reference.backprop import _forward, _loss_and_gradients
from backprop_conformance.reference.network import Params
from backprop_conformance.reference.training import _sgd_update
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.tolerances import SAFETY, ErrorBounds, ambiguity, error_bounds, update_bounds

#: A reference trajectory whose loss or params exceed this diverges: outside the model.
MAX_TRAINING_MAGNITUDE = 1e4


class OutsideModel(Exception):
    """The case is outside what the tolerance model promises (ambiguous kink, saturated bce)."""


@dataclass
class Expected:
    """Reference values and allowances of one comparison: ``params`` where it compares params."""

    values: Params | None = None
    allowed: Params | None = None
    #: a_L, J, or the per-iteration losses, with their allowances.
    value: np.ndarray | float | None = None
    value_allowed: np.ndarray | float | None = None


def scaled(bounds: Params) -> Params:
    """Return ``bounds`` times SAFETY, in the params' structure."""
    return [tuple(None if b is None else SAFETY * b for b in pair) for pair in bounds]  # type: ignore[misc]


def bounds_or_reject(case: Case, dtype: str, params: Params, x: np.ndarray, y: np.ndarray,
                     carried: Params | None = None) -> ErrorBounds:
    """Return the error bounds of one pass, or raise OutsideModel saying why the model promises nothing."""
    bounds = error_bounds(case.network, params, x, y, dtype, param_error=carried)
    reason = ambiguity(case.network, bounds, dtype)
    if reason is not None:
        raise OutsideModel(reason)
    return bounds


def expect_forward(case: Case, dtype: str) -> Expected:
    """Return a_L and its allowance."""
    bounds = bounds_or_reject(case, dtype, case.params, case.x, case.y)
    _, activations = _forward(case.network, case.params, case.x)
    return Expected(value=activations[-1], value_allowed=SAFETY * bounds.output)


def expect_loss_and_gradients(case: Case, dtype: str) -> Expected:
    """Return J and the gradients, with their allowances (J's is in float64: a loss is reported as such)."""
    bounds = bounds_or_reject(case, dtype, case.params, case.x, case.y)
    loss, grads = _loss_and_gradients(case.network, case.params, case.x, case.y)
    return Expected(grads, scaled(bounds.grads), loss, SAFETY * bounds.loss)


def expect_sgd_step(case: Case, dtype: str) -> Expected:
    """Return the params after one gradient-descent step, with their allowances."""
    bounds = bounds_or_reject(case, dtype, case.params, case.x, case.y)
    _, grads = _loss_and_gradients(case.network, case.params, case.x, case.y)
    expected = _sgd_update(case.params, grads, case.learning_rate)
    return Expected(expected, scaled(update_bounds(case.params, grads, bounds, case.learning_rate)))


def expect_train(case: Case, dtype: str) -> Expected:
    """Return the final params and the per-iteration losses of training over ``case.batches``.

    The bound of each step's update, times SAFETY, is carried into the next
    step as the parameter uncertainty (``suite.tolerances``).
    """
    params, carried, losses, loss_allowances = case.params, None, [], []
    allowed: Params = scaled([(np.zeros_like(w), None if b is None else np.zeros_like(b)) for w, b in params])
    for batch in case.batches:
        x, y = case.x[batch], case.y[batch]
        largest = max(float(np.max(np.abs(array))) for pair in params for array in pair if array is not None)
        if not largest <= MAX_TRAINING_MAGNITUDE:
            raise OutsideModel(f"training diverges: a parameter reaches {largest:.3g}")
        bounds = bounds_or_reject(case, dtype, params, x, y, carried)
        value, grads = _loss_and_gradients(case.network, params, x, y)
        losses.append(value)
        loss_allowances.append(SAFETY * bounds.loss)
        allowed = scaled(update_bounds(params, grads, bounds, case.learning_rate, carried))
        carried = allowed
        params = _sgd_update(params, grads, case.learning_rate)
    return Expected(params, allowed, np.array(losses), np.array(loss_allowances))
