"""Gradient-descent updates, batch schedules and mini-batch training.

Vocabulary of document 002: an *epoch* is one pass over the training set, the
*batch size* is the number of samples in one forward/backward pass, and an
*iteration* is one such pass with its update. 10,000 samples at batch size
5,000 take 2 iterations per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from backprop_conformance.reference.backprop import Workspace, _backprop
from backprop_conformance.reference.blocks import in_place
from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizer_rules import SLOTS, OptimizerState, init_state, optimizer_update
from backprop_conformance.reference.optimizers import Optimizer, check_optimizer
from backprop_conformance.reference.overflow import UpdateOverflow, raising
from backprop_conformance.reference.validation import (
    check_batches,
    check_data,
    check_learning_rate,
    check_params,
    check_positive_int,
)


@dataclass(frozen=True)
class Trajectory:
    """What training produced: the loss of each iteration, taken before its
    update, the final params, and the optimizer's final state (plain gradient
    descent: its step count and no slots)."""

    losses: np.ndarray
    params: Params
    state: OptimizerState | None = None


def _descended(theta: np.ndarray, gradient: np.ndarray, learning_rate: float) -> np.ndarray:
    """Return theta - learning_rate * gradient as a new array."""
    step = learning_rate * gradient
    if step.dtype != np.result_type(theta, step):  # e.g. complex theta, real gradient
        return theta - step
    # theta - step written over step, which is ours: one new array, not two (speed).
    return np.subtract(theta, step, out=step)


def _sgd_update(params: Params, grads: Params, learning_rate: float) -> Params:
    """Return theta - learning_rate * dJ/dtheta for every parameter, as new arrays."""
    return [
        (
            _descended(weight, d_weight, learning_rate),
            None if bias is None else _descended(bias, d_bias, learning_rate),
        )
        for (weight, bias), (d_weight, d_bias) in zip(params, grads)
    ]


def _descend(learning_rate: float, theta: np.ndarray, gradient: np.ndarray) -> None:
    gradient *= learning_rate
    theta -= gradient


def _descend_into_gradient(learning_rate: float, theta: np.ndarray, gradient: np.ndarray) -> None:
    gradient *= -learning_rate
    gradient += theta


def _sgd_update_in_place(params: Params, grads: Params, learning_rate: float) -> Params:
    """Return params after theta <- theta - learning_rate * dJ/dtheta, done in place.

    Overwrites both ``params`` and ``grads``, and allocates nothing (speed):
    only for callers that own both, such as ``sgd_step`` and ``train``, whose
    params are the fresh copies ``check_params`` makes, never the caller's.
    The numbers are those of ``_sgd_update``, bit for bit. Under
    ``overflow.raising`` an update that overflows raises UpdateOverflow naming
    its array.
    """
    for layer, ((weight, bias), (d_weight, d_bias)) in enumerate(zip(params, grads), start=1):
        for kind, theta, gradient in (("W", weight, d_weight), ("b", bias, d_bias)):
            if theta is None:
                continue
            try:  # large arrays block by block (speed): the same numbers (reference.blocks)
                in_place(partial(_descend, learning_rate), theta, gradient)
            except FloatingPointError:
                raise UpdateOverflow(parameter_name(layer, kind)) from None
    return params


def _train_step(
    network: Network,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    learning_rate: float,
    workspace: Workspace | None = None,
) -> tuple[float, Workspace]:
    """Return J on (x, y) and the step's workspace, after updating ``params`` in place: one iteration.

    On checked arrays that the caller owns; ``workspace``, the one an
    earlier step of the same shapes returned, is overwritten instead of
    allocating (speed). The returned workspace is scratch for the next step:
    the update has scaled its grads by the learning rate in place. The
    params are those of ``_loss_and_gradients`` and ``_sgd_update``, bit for bit.
    """
    value, arrays = _backprop(network, params, x, y, out=workspace)
    _sgd_update_in_place(params, arrays.grads, learning_rate)
    return value, arrays


def sgd_step(network: Network, params: Any, x: Any, y: Any, learning_rate: float) -> Params:
    """Return the params after one gradient-descent step on the batch (x, y).

    theta <- theta - learning_rate * dJ/dtheta; the inputs are left untouched.
    """
    params = check_params(network, params, copy=False)  # read only: the step is written into the gradients
    x, y = check_data(network, x, y, copy=False)
    learning_rate = check_learning_rate(learning_rate)
    with raising("sgd_step", network, params, x, y, learning_rate=learning_rate):
        _, arrays = _backprop(network, params, x, y)
        return _descended_into_gradients(params, arrays.grads, learning_rate)


def _descended_into_gradients(params: Params, grads: Params, learning_rate: float) -> Params:
    """Return theta - learning_rate * dJ/dtheta for every parameter, written over ``grads`` (which the caller
    owns): theta + (-learning_rate * grad), bit for bit ``_sgd_update``'s numbers, without a copy of theta."""
    for layer, ((weight, bias), (d_weight, d_bias)) in enumerate(zip(params, grads), start=1):
        for kind, theta, gradient in (("W", weight, d_weight), ("b", bias, d_bias)):
            if theta is None:
                continue
            try:
                in_place(partial(_descend_into_gradient, learning_rate), theta, gradient)
            except FloatingPointError:
                raise UpdateOverflow(parameter_name(layer, kind)) from None
    return grads


def iterations_per_epoch(n_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """Return ceil(n_samples / batch_size), or floor when the partial batch is dropped."""
    n_samples = check_positive_int(n_samples, "n_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    return n_samples // batch_size if drop_last else math.ceil(n_samples / batch_size)


def batch_schedule(
    n_samples: int,
    batch_size: int,
    epochs: int,
    seed: int | None = None,
    drop_last: bool = False,
) -> list[np.ndarray]:
    """Return the index arrays of every iteration, in the order they are used.

    Each epoch walks the samples in order, or, with a seed, in a fresh
    permutation per epoch drawn from one ``numpy.random.default_rng(seed)``.
    The last partial batch of an epoch is kept unless ``drop_last``.
    """
    per_epoch = iterations_per_epoch(n_samples, batch_size, drop_last)
    epochs = check_positive_int(epochs, "epochs")
    if per_epoch == 0:
        raise ValueError(
            f"batch_size={batch_size} exceeds n_samples={n_samples} with drop_last=True: "
            "every epoch would be empty"
        )
    if seed is not None:
        check_positive_int(seed, "seed", minimum=0)
    rng = None if seed is None else np.random.default_rng(seed)
    batches = []
    for _ in range(epochs):
        order = np.arange(n_samples) if rng is None else rng.permutation(n_samples)
        for start in range(0, per_epoch * batch_size, batch_size):
            batches.append(order[start : start + batch_size])
    return batches


def train(
    network: Network, params: Any, x: Any, y: Any, batches: Any, optimizer: float | Optimizer | None = None,
    *, learning_rate: float | None = None, state: OptimizerState | None = None,
) -> Trajectory:
    """Return the Trajectory of training over ``batches`` of (x, y).

    ``optimizer`` is a ``reference.Optimizer``, or a float: plain gradient
    descent at that learning rate (also ``learning_rate=``). ``state``
    continues from an earlier run's ``Trajectory.state``.
    """
    if (optimizer is None) == (learning_rate is None):
        raise TypeError("train needs exactly one of optimizer and learning_rate")
    params = check_params(network, params)  # fresh copies: updated in place below
    x, y = check_data(network, x, y)
    batches = check_batches(batches, x.shape[0])
    if isinstance(optimizer, Optimizer) and not (optimizer.name == "sgd" and optimizer.momentum == 0
                                                 and optimizer.weight_decay == 0):
        return _train_with(network, params, x, y, batches, optimizer, state, own_params=True)
    rate = check_learning_rate(optimizer.lr if isinstance(optimizer, Optimizer) else
                               learning_rate if optimizer is None else optimizer)
    # Plain gradient descent: the fast path below; its state is sgd's (a trace it never uses).
    state = _checked_state(Optimizer("sgd", lr=rate), state, params)
    losses = np.empty(len(batches))
    # The last step's arrays per batch size, overwritten by the next step of that size (speed).
    workspaces: dict[int, Workspace] = {}
    for iteration, batch in enumerate(batches):
        size = len(batch)
        x_batch, y_batch = x[batch], y[batch]
        step = f"step {iteration + 1} of {len(batches)} ({size} samples): "
        with raising("train", network, params, x_batch, y_batch, step=step, learning_rate=rate):
            losses[iteration], workspaces[size] = _train_step(
                network, params, x_batch, y_batch, rate, workspaces.get(size)
            )
    return Trajectory(losses=losses, params=params, state=OptimizerState(state.count + len(batches), state.slots))


def _checked_state(optimizer: Optimizer, state: OptimizerState | None, params: Params) -> OptimizerState:
    if state is None:
        return init_state(optimizer, params)
    if not isinstance(state, OptimizerState) or set(state.slots) != set(SLOTS[optimizer.name]):
        raise TypeError(f"state={state!r:.80} is not a state of {optimizer.name}")
    if isinstance(state.count, bool) or not isinstance(state.count, int) or state.count < 0:
        raise ValueError(f"state.count={state.count!r} must be an int >= 0 (the steps taken)")
    wanted = [tuple(None if a is None else a.shape for a in pair) for pair in params]
    for slot, given in state.slots.items():
        shapes = [tuple(None if a is None else np.shape(a) for a in pair) for pair in given]
        if shapes != wanted:
            raise ValueError(f"state[{slot!r}] has shapes {shapes}; these params need {wanted}")
        for layer, pair in enumerate(given):
            for kind, array in zip("Wb", pair):
                if array is not None and not (isinstance(array, np.ndarray) and array.dtype == np.float64):
                    found = f"{array.dtype} array" if isinstance(array, np.ndarray) else type(array).__name__
                    raise TypeError(f"state[{slot!r}] {parameter_name(layer + 1, kind)} is a {found}; a state "
                                    "holds float64 arrays, as the steps make them")
    return state


def optimizer_step(network: Network, params: Any, x: Any, y: Any, optimizer: Optimizer,
                   state: OptimizerState | None = None) -> tuple[Params, OptimizerState]:
    """Return the params after one step of ``optimizer`` on the batch (x, y), and the new state."""
    params = check_params(network, params, copy=False)  # read only: the new params go into the gradients (speed)
    x, y = check_data(network, x, y, copy=False)
    # The whole batch as a slice: views of x and y, not copies as an index array would make (speed).
    trajectory = _train_with(network, params, x, y, [slice(None)], check_optimizer(optimizer), state)
    return trajectory.params, trajectory.state  # type: ignore[return-value]


def _train_with(network: Network, params: Params, x: np.ndarray, y: np.ndarray, batches: list[np.ndarray | slice],
                optimizer: Optimizer, state: OptimizerState | None, own_params: bool = False) -> Trajectory:
    """Train with ``optimizer``; ``own_params``: the params are the caller's copies, to update in place.

    Whatever the update may write over (speed): the params when they are
    ours, else the step's gradients (and that workspace is then given up);
    the state once it is ours (made here, or by an earlier step).
    """
    own_state, state = state is None, _checked_state(optimizer, state, params)
    losses = np.empty(len(batches))
    workspaces: dict[int, Workspace | None] = {}  # as in train: the last step's arrays per batch size (speed)
    for iteration, batch in enumerate(batches):
        x_batch, y_batch = x[batch], y[batch]
        size = len(x_batch)
        step = f"step {state.count + 1} ({size} samples) of {optimizer.describe()}: "
        overwrite = ("params" if own_params else "grads",) + (("state",) if own_state else ())
        with raising("train", network, params, x_batch, y_batch, step=step, learning_rate=optimizer.lr):
            losses[iteration], params, state, workspace = _optimizer_train_step(
                network, params, x_batch, y_batch, optimizer, state, workspaces.get(size), overwrite)
        workspaces[size] = workspace if own_params else None  # its grads may now be the params
        own_params = own_state = True
    return Trajectory(losses=losses, params=params, state=state)


def _optimizer_train_step(network: Network, params: Params, x: np.ndarray, y: np.ndarray, optimizer: Optimizer,
                          state: OptimizerState, workspace: Workspace | None = None,
                          overwrite: tuple[str, ...] = ()) -> tuple:
    """Return J, the new params and state, and the step's workspace: one iteration with ``optimizer``.

    ``workspace`` (an earlier step's, same shapes) is overwritten instead of allocating (speed).
    ``overwrite`` is ``optimizer_update``'s: what the update may write its results over; with
    ``"grads"``, the returned workspace holds the new params, and is not scratch to reuse.
    """
    value, arrays = _backprop(network, params, x, y, out=workspace)
    params, state = optimizer_update(optimizer, state, params, arrays.grads, overwrite)
    return value, params, state, arrays
