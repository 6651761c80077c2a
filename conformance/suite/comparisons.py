"""Run an adapter and the reference on one case and measure every quantity.

Shared by the pytest suite (which requires every measurement to pass) and
the report (which records them). Quantities: ``output`` (forward), ``loss``,
``gradient``, ``update`` (one sgd_step) and ``trajectory`` (per-iteration
losses and final params of ``train``).
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.adapters.protocol import Adapter
from backprop_conformance.reference.backprop import _forward, _loss_and_gradients
from backprop_conformance.reference.training import _sgd_update
from backprop_conformance.suite.assertions import Measurement, measure, measure_params
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.tolerances import SAFETY, ErrorBounds, ambiguity, error_bounds, update_bounds

QUANTITIES = ("output", "loss", "gradient", "update", "trajectory")

#: A reference trajectory whose loss or params exceed this diverges: outside the model.
MAX_TRAINING_MAGNITUDE = 1e4


class OutsideModel(Exception):
    """The case is outside what the tolerance model promises (ambiguous kink, saturated bce)."""


def _scaled(bounds: list) -> list:
    return [tuple(None if b is None else SAFETY * b for b in pair) for pair in bounds]


def _context(adapter: Adapter, case: Case, quantity: str) -> dict:
    return {"adapter": adapter.label, "dtype": adapter.dtype, "quantity": quantity, "network": case.network}


def _bounds_or_reject(
    adapter: Adapter, case: Case, params: list, x: np.ndarray, y: np.ndarray, carried: list | None = None
) -> ErrorBounds:
    bounds = error_bounds(case.network, params, x, y, adapter.dtype, param_error=carried)
    reason = ambiguity(case.network, bounds, adapter.dtype)
    if reason is not None:
        raise OutsideModel(reason)
    return bounds


def compare_forward(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurement of the adapter's forward output."""
    bounds = _bounds_or_reject(adapter, case, case.params, case.x, case.y)
    _, activations = _forward(case.network, case.params, case.x)
    output = adapter.forward(case.network, case.params, case.x)
    return [measure(output, activations[-1], SAFETY * bounds.output, name="a_L", **_context(adapter, case, "output"))]


def compare_loss_and_gradients(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of the adapter's loss and every gradient array."""
    bounds = _bounds_or_reject(adapter, case, case.params, case.x, case.y)
    expected_loss, expected_grads = _loss_and_gradients(case.network, case.params, case.x, case.y)
    value, grads = adapter.loss_and_gradients(case.network, case.params, case.x, case.y)
    loss = measure(
        np.float64(value), expected_loss, SAFETY * bounds.loss, name="J",
        **{**_context(adapter, case, "loss"), "dtype": "float64"},
    )
    return [loss, *measure_params(grads, expected_grads, _scaled(bounds.grads), **_context(adapter, case, "gradient"))]


def compare_sgd_step(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of the params after one adapter sgd_step."""
    bounds = _bounds_or_reject(adapter, case, case.params, case.x, case.y)
    _, grads = _loss_and_gradients(case.network, case.params, case.x, case.y)
    expected = _sgd_update(case.params, grads, case.learning_rate)
    allowed = update_bounds(case.params, grads, bounds, case.learning_rate)
    actual = adapter.sgd_step(case.network, case.params, case.x, case.y, case.learning_rate)
    return measure_params(actual, expected, _scaled(allowed), **_context(adapter, case, "update"))


def compare_train(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of a training run: each iteration's loss and the final params.

    The bound of each step's update, times SAFETY, is carried into the next
    step as the parameter uncertainty (``suite.tolerances``).
    """
    params, carried = case.params, None
    expected_losses, loss_allowances = [], []
    for batch in case.batches:
        x, y = case.x[batch], case.y[batch]
        largest = max(float(np.max(np.abs(array))) for pair in params for array in pair if array is not None)
        if not largest <= MAX_TRAINING_MAGNITUDE:
            raise OutsideModel(f"training diverges: a parameter reaches {largest:.3g}")
        bounds = _bounds_or_reject(adapter, case, params, x, y, carried)
        value, grads = _loss_and_gradients(case.network, params, x, y)
        expected_losses.append(value)
        loss_allowances.append(SAFETY * bounds.loss)
        allowed = _scaled(update_bounds(params, grads, bounds, case.learning_rate, carried))
        carried = allowed
        params = _sgd_update(params, grads, case.learning_rate)
    trajectory = adapter.train(case.network, case.params, case.x, case.y, case.batches, case.learning_rate)
    context = _context(adapter, case, "trajectory")
    losses = measure(
        trajectory.losses, np.array(expected_losses), np.array(loss_allowances), name="losses",
        **{**context, "dtype": "float64"},
    )
    return [losses, *measure_params(trajectory.params, params, allowed, **context)]
