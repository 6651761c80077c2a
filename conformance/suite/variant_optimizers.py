"""The classic optimizer bugs as named variants: each an update ``(optimizer, state, params, grads) ->
(params, state)`` built from the reference's rules with one thing changed, and where it can show.

no bias correction               Adam's m and v used as they are (as if t were infinite)
bias correction one step off     1 - beta^(t + 1) instead of 1 - beta^t
eps on the wrong side of the root  sqrt(v + eps) for sqrt(v) + eps, or the other way round
AdamW's decay not multiplied by lr  theta (1 - weight_decay) instead of theta (1 - lr weight_decay)
the momentum buffer started at zero  torch's first buffer (1 - dampening) g instead of g
weight decay applied after the step  theta' - lr weight_decay theta' after the rule, not g + weight_decay theta
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from backprop_conformance.reference.network import Params
from backprop_conformance.reference.optimizer_rules import OptimizerState, optimizer_update
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.suite.case import Case

Update = Callable[[Optimizer, OptimizerState, Params, Params], tuple[Params, OptimizerState]]
#: A step count at which beta^t is 0 in float64: bias correction becomes 1, i.e. none.
NO_CORRECTION_STEP = 10**9


def _at_step(step: Callable[[int], int]) -> Update:
    """Return the reference's update, run as if ``state.count`` were ``step(state.count)``."""

    def update(optimizer: Optimizer, state: OptimizerState, params: Params, grads: Params) -> tuple:
        new_params, new_state = optimizer_update(optimizer, OptimizerState(step(state.count), state.slots),
                                                 params, grads)
        return new_params, OptimizerState(state.count + 1, new_state.slots)

    return update


no_bias_correction = _at_step(lambda count: NO_CORRECTION_STEP)
bias_correction_one_step_off = _at_step(lambda count: count + 1)
#: torch's SGD starts its buffer at g only on the first step; past it, the rule is m b + (1 - dampening) g.
momentum_buffer_from_zero = _at_step(lambda count: count + 1)


def _other_eps(optimizer: Optimizer) -> Optimizer:
    o = optimizer
    if o.name == "rmsprop":  # optax's eps_in_sqrt turned over; torch's rule is optax's at eps_in_sqrt=False
        return dataclasses.replace(o, convention="optax", eps_in_sqrt=not o.eps_in_sqrt)
    if o.name == "adagrad":
        return dataclasses.replace(o, convention="optax" if o.convention == "torch" else "torch")
    if o.convention == "torch":  # adam(w): sqrt(v_hat + eps) with nothing outside
        return dataclasses.replace(o, convention="optax", eps=0.0, eps_root=o.eps)
    return dataclasses.replace(o, eps=0.0, eps_root=o.eps + o.eps_root)


def eps_on_the_wrong_side(optimizer: Optimizer, state: OptimizerState, params: Params, grads: Params) -> tuple:
    """Return the step with eps inside the root where the convention has it outside, or the other way round."""
    return optimizer_update(_other_eps(optimizer), state, params, grads)


def decay_without_lr(optimizer: Optimizer, state: OptimizerState, params: Params, grads: Params) -> tuple:
    """Return AdamW's step with theta (1 - weight_decay): the decay not multiplied by lr."""
    return optimizer_update(dataclasses.replace(optimizer, weight_decay=optimizer.weight_decay / optimizer.lr),
                            state, params, grads)


def decay_after_the_step(optimizer: Optimizer, state: OptimizerState, params: Params, grads: Params) -> tuple:
    """Return the rule's step without coupled decay, then theta' - lr weight_decay theta'."""
    new_params, new_state = optimizer_update(dataclasses.replace(optimizer, weight_decay=0.0), state, params, grads)
    factor = optimizer.lr * optimizer.weight_decay
    return [(w - factor * w, None if b is None else b - factor * b) for w, b in new_params], new_state


# -- where each can show ---------------------------------------------------------------------------


def _optimizer(case: Case) -> Optimizer | None:
    return case.optimizer


def adam_like(case: Case, dtype: str) -> bool:
    return _optimizer(case) is not None and case.optimizer.name in ("adam", "adamw")  # type: ignore[union-attr]


def with_eps(case: Case, dtype: str) -> bool:
    o = _optimizer(case)
    if o is None or o.name == "sgd" or (o.name in ("adam", "adamw") and o.amsgrad):
        return False
    return not (o.name == "adagrad" and o.lr_decay)  # optax's adagrad has no lr_decay


def adamw_decay(case: Case, dtype: str) -> bool:
    o = _optimizer(case)
    return o is not None and o.name == "adamw" and bool(o.weight_decay)


def dampened_torch_momentum(case: Case, dtype: str) -> bool:
    o = _optimizer(case)
    return o is not None and o.name == "sgd" and o.convention == "torch" and bool(o.momentum and o.dampening)


def coupled_decay(case: Case, dtype: str) -> bool:
    o = _optimizer(case)
    return o is not None and o.name != "adamw" and bool(o.weight_decay)
