"""Run an adapter and the reference on one case and measure every quantity.

Shared by the pytest suite (which requires every measurement to pass) and
the report (which records them). Quantities: ``output`` (forward), ``loss``,
``gradient``, ``update`` (one sgd_step) and ``trajectory`` (per-iteration
losses and final params of ``train``). What the reference expects, and the
allowance, come from ``suite.expectations`` before the adapter runs, so a
case outside the model (``OutsideModel``) never reaches the adapter.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.adapters.protocol import Adapter, Trajectory
from backprop_conformance.suite.assertions import Measurement, measure, measure_params
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.expectations import (
    MAX_TRAINING_MAGNITUDE,
    Expected,
    OutsideModel,
    expect_forward,
    expect_loss_and_gradients,
    expect_optimizer_train,
    expect_sgd_step,
    expect_train,
)

__all__ = ["MAX_TRAINING_MAGNITUDE", "QUANTITIES", "OutsideModel", "compare_forward", "compare_loss_and_gradients",
           "compare_optimizer_train", "compare_sgd_step", "compare_train"]

QUANTITIES = ("output", "loss", "gradient", "update", "trajectory")


def _context(adapter: Adapter, case: Case, quantity: str) -> dict:
    return {"adapter": adapter.label, "dtype": adapter.dtype, "quantity": quantity, "network": case.network}


def compare_forward(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurement of the adapter's forward output."""
    expected = expect_forward(case, adapter.dtype)
    output = adapter.forward(case.network, case.params, case.x)
    return [measure(output, expected.value, expected.value_allowed, name="a_L", **_context(adapter, case, "output"))]


def compare_loss_and_gradients(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of the adapter's loss and every gradient array."""
    expected = expect_loss_and_gradients(case, adapter.dtype)
    value, grads = adapter.loss_and_gradients(case.network, case.params, case.x, case.y)
    loss = measure(
        np.float64(value), expected.value, expected.value_allowed, name="J",
        **{**_context(adapter, case, "loss"), "dtype": "float64"},
    )
    return [loss, *measure_params(grads, expected.values, expected.allowed, **_context(adapter, case, "gradient"))]


def compare_sgd_step(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of the params after one adapter sgd_step."""
    expected = expect_sgd_step(case, adapter.dtype)
    actual = adapter.sgd_step(case.network, case.params, case.x, case.y, case.learning_rate)
    return measure_params(actual, expected.values, expected.allowed, **_context(adapter, case, "update"))


def compare_train(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of a training run: each iteration's loss and the final params; with the
    case's optimizer, if it has one."""
    if case.optimizer is not None:
        return compare_optimizer_train(adapter, case)
    expected = expect_train(case, adapter.dtype)
    trajectory = adapter.train(case.network, case.params, case.x, case.y, case.batches, case.learning_rate)
    return _trajectory(adapter, case, expected, trajectory)


def compare_optimizer_train(adapter: Adapter, case: Case) -> list[Measurement]:
    """Return the measurements of training with ``case.optimizer`` (the adapter's ``train(..., optimizer=)``)."""
    expected = expect_optimizer_train(case, case.optimizer, adapter.dtype)  # type: ignore[arg-type]
    trajectory = adapter.train(case.network, case.params, case.x, case.y, case.batches, case.learning_rate,
                               case.optimizer)
    return _trajectory(adapter, case, expected, trajectory)


def _trajectory(adapter: Adapter, case: Case, expected: Expected, trajectory: Trajectory) -> list[Measurement]:
    context = _context(adapter, case, "trajectory")
    losses = measure(
        trajectory.losses, expected.value, expected.value_allowed, name="losses", **{**context, "dtype": "float64"},
    )
    return [losses, *measure_params(trajectory.params, expected.values, expected.allowed, **context)]
