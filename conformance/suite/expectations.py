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
from backprop_conformance.reference.optimizer_rules import init_state, optimizer_update
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.training import _sgd_update
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.tolerance_optimizers import DenominatorUndetermined, rule_bound
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


def _training_step(case: Case, dtype: str, params: Params, batch: np.ndarray,
                   carried: Params | None) -> tuple[ErrorBounds, float, Params]:
    """Return one training step's bounds, loss and gradients; raise OutsideModel once training diverges."""
    x, y = case.x[batch], case.y[batch]
    largest = max(float(np.max(np.abs(array))) for pair in params for array in pair if array is not None)
    if not largest <= MAX_TRAINING_MAGNITUDE:
        raise OutsideModel(f"training diverges: a parameter reaches {largest:.3g}")
    bounds = bounds_or_reject(case, dtype, params, x, y, carried)
    value, grads = _loss_and_gradients(case.network, params, x, y)
    return bounds, value, grads


def expect_train(case: Case, dtype: str) -> Expected:
    """Return the final params and the per-iteration losses of training over ``case.batches``.

    The bound of each step's update, times SAFETY, is carried into the next
    step as the parameter uncertainty (``suite.tolerances``).
    """
    params, carried, losses, loss_allowances = case.params, None, [], []
    allowed: Params = scaled([(np.zeros_like(w), None if b is None else np.zeros_like(b)) for w, b in params])
    for batch in case.batches:
        bounds, value, grads = _training_step(case, dtype, params, batch, carried)
        losses.append(value)
        loss_allowances.append(SAFETY * bounds.loss)
        allowed = scaled(update_bounds(params, grads, bounds, case.learning_rate, carried))
        carried = allowed
        params = _sgd_update(params, grads, case.learning_rate)
    return Expected(params, allowed, np.array(losses), np.array(loss_allowances))


def _arrays(params: Params) -> list[tuple[int, int, np.ndarray]]:
    """Return (layer, kind, array) for every parameter array: kind 0 for W, 1 for b."""
    return [(layer, kind, array) for layer, pair in enumerate(params) for kind, array in enumerate(pair)
            if array is not None]


def expect_optimizer_train(case: Case, optimizer: Optimizer, dtype: str) -> Expected:
    """Return the final params and per-iteration losses of training with ``optimizer`` over ``case.batches``.

    Each step's bound comes from ``suite.tolerance_optimizers`` and is carried
    into the next step (params and the optimizer's state) before SAFETY, which
    scales only what is compared: a long schedule's allowance grows with the
    error it can accumulate, not by SAFETY per step.
    """
    params, state, carried = case.params, init_state(optimizer, case.params), None
    zeros = [(np.zeros_like(w), None if b is None else np.zeros_like(b)) for w, b in params]
    d_state = {slot: [list(pair) for pair in zeros] for slot in state.slots}
    decay = 0.0 if optimizer.name == "adamw" else optimizer.weight_decay or 0.0
    losses, loss_allowances = [], []
    for batch in case.batches:
        bounds, value, grads = _training_step(case, dtype, params, batch, carried)
        losses.append(value)
        loss_allowances.append(SAFETY * bounds.loss)
        updated, after = optimizer_update(optimizer, state, params, grads)
        new_bounds = [[None, None] for _ in params]
        for layer, kind, theta in _arrays(params):
            d_theta = 0.0 * theta if carried is None else carried[layer][kind]
            g = grads[layer][kind] + decay * theta
            d_g = bounds.grads[layer][kind] + decay * d_theta + bounds.u * (np.abs(decay * theta) + np.abs(g))
            own = {slot: d_state[slot][layer][kind] for slot in d_state}
            try:
                new_bounds[layer][kind] = rule_bound(
                    optimizer, after.count, theta, g, d_theta, d_g,
                    {slot: state[slot][layer][kind] for slot in state.slots},
                    {slot: after[slot][layer][kind] for slot in after.slots}, own, bounds.u) + bounds.eta
            except DenominatorUndetermined as what:
                raise OutsideModel(f"{optimizer.name}: step {after.count}: {what} is not determined to within "
                                   f"half of itself in {dtype} (a gradient below its rounding error, or the "
                                   "bound carried over the steps so far grown that large)") from None
            for slot in d_state:
                d_state[slot][layer][kind] = own[slot]
        carried = [(w, b) for w, b in new_bounds]
        params, state = updated, after
    allowed = scaled(carried) if carried is not None else scaled(zeros)
    return Expected(params, allowed, np.array(losses), np.array(loss_allowances))
