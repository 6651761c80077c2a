"""The optimizers' tolerance model bounds what it says it bounds: one step's effect of errors in the inputs.

``suite.tolerance_optimizers.rule_bound`` takes bounds on the errors of the
params, the gradient and the state before a step and returns a bound on the
params' error after it. Here every entry of a 3000-entry array is its own
trial: the inputs (gradients from 1e-7 to 10, exact zeros, states from a few
earlier steps, relative input errors from 1e-9 to 0.1) are moved to random
corners of their error boxes, the step is taken again in float64 (whose own
rounding, 1e-16, is far below the moves), and the change in the new params
must stay within the bound. The corners are where a first-order bound is
tightest, and where taking n and sqrt(v) as moving independently, or as
moving together, makes a difference (Adam's m_hat / sqrt(v_hat), RMSprop's
g / sqrt(v), Adagrad's g / sqrt(S) share g). A case whose denominator is not
determined is outside the model, and counted: most entries must be inside.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop_conformance.reference.optimizer_rules import OptimizerState, init_state, optimizer_update
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.suite.tolerance_optimizers import DenominatorUndetermined, rule_bound

N = 3000
#: The second-order terms a first-order bound leaves out, relative to it, per unit of relative input error.
SECOND_ORDER = 10.0
U = 2.0**-53  # the float64 the trials run in: the model's own roundings are then negligible, not zero
OPTIMIZERS = {
    "adam-torch": Optimizer("adam", "torch", lr=0.01),
    "adam-optax": Optimizer("adam", "optax", lr=0.01, eps_root=1e-12),
    "adam-torch-large_eps": Optimizer("adam", "torch", lr=0.01, betas=(0.5, 0.9), eps=1e-2),
    "adam-torch-amsgrad": Optimizer("adam", "torch", lr=0.01, amsgrad=True),
    "adamw-optax": Optimizer("adamw", "optax", lr=0.01, weight_decay=0.1),
    "rmsprop-torch": Optimizer("rmsprop", "torch", lr=0.01),
    "rmsprop-optax": Optimizer("rmsprop", "optax", lr=0.01),
    "rmsprop-torch-centered-momentum": Optimizer("rmsprop", "torch", lr=0.01, centered=True, momentum=0.5),
    "rmsprop-optax-centered": Optimizer("rmsprop", "optax", lr=0.01, alpha=0.9, centered=True),
    "adam-optax-nesterov": Optimizer("adam", "optax", lr=0.01, nesterov=True),
    "adamw-optax-nesterov": Optimizer("adamw", "optax", lr=0.01, nesterov=True, weight_decay=0.1, betas=(0.5, 0.9)),
    "rmsprop-optax-bias_correction": Optimizer("rmsprop", "optax", lr=0.01, bias_correction=True, initial_scale=0.1),
    "rmsprop-optax-eps_outside-nesterov": Optimizer("rmsprop", "optax", lr=0.01, eps_in_sqrt=False, momentum=0.5,
                                                    nesterov=True),
    "rmsprop-optax-bias_correction-nesterov": Optimizer("rmsprop", "optax", lr=0.01, alpha=0.9, bias_correction=True,
                                                        momentum=0.9, nesterov=True, eps=1e-3),
    "rmsprop-optax-centered-bias_correction": Optimizer("rmsprop", "optax", lr=0.01, centered=True,
                                                        bias_correction=True, initial_scale=1e3),
    "adagrad-torch": Optimizer("adagrad", "torch", lr=0.1),
    "adagrad-optax": Optimizer("adagrad", "optax", lr=0.1),
    "adagrad-torch-lr_decay": Optimizer("adagrad", "torch", lr=0.1, lr_decay=0.1, initial_accumulator_value=0.1),
    "sgd-torch-nesterov": Optimizer("sgd", "torch", lr=0.1, momentum=0.9, nesterov=True),
}


def _gradient(rng: np.random.Generator) -> np.ndarray:
    g = rng.normal(size=N) * 10.0 ** rng.uniform(-7, 1, size=N)
    g[rng.random(N) < 0.03] = 0.0
    return g


def _state(o: Optimizer, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, OptimizerState]:
    """Params and a state after ``steps`` reference steps on random gradients."""
    params = [(rng.normal(size=N), None)]
    state = init_state(o, params)
    for _ in range(steps):
        params, state = optimizer_update(o, state, params, [(_gradient(rng), None)])
    return params[0][0], state


def _slots(state: OptimizerState) -> dict[str, np.ndarray]:
    return {slot: arrays[0][0] for slot, arrays in state.slots.items()}


def _moved(value: np.ndarray, bound: np.ndarray, signs: np.ndarray, floor: float | None = None) -> np.ndarray:
    moved = value + signs * bound
    return moved if floor is None else np.maximum(moved, floor)


@pytest.mark.parametrize("steps", [0, 1, 5])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_step_moves_no_further_than_its_bound(name, steps):
    o, rng = OPTIMIZERS[name], np.random.default_rng(len(name) + 10 * steps)
    theta, state = _state(o, steps, rng)
    g = _gradient(rng)
    relative = 10.0 ** rng.uniform(-9, -1, size=N)
    d_theta, d_g = relative * np.abs(theta), relative * (np.abs(g) + 1e-9 * rng.random(N))
    before = _slots(state)
    d_state = {slot: relative * np.abs(value) for slot, value in before.items()}
    own = {slot: bound.copy() for slot, bound in d_state.items()}
    new, after = optimizer_update(o, state, [(theta, None)], [(g, None)])
    try:
        bound = rule_bound(o, after.count, theta, g, d_theta, d_g, before, _slots(after), own, U)
    except DenominatorUndetermined:
        pytest.fail(f"{name}: a denominator undetermined at relative errors up to 0.1 of the inputs")
    worst = 0.0
    for _ in range(16):  # random corners of every entry's box
        signs = {key: rng.choice([-1.0, 1.0], size=N) for key in ("theta", "g", *before)}
        moved_state = OptimizerState(state.count, {
            slot: [(_moved(value, d_state[slot], signs[slot], 0.0 if slot in ("nu", "nu_max", "sum_of_squares")
                           else None), None)] for slot, value in before.items()})
        if o.name == "rmsprop" and o.centered:  # keep nu >= mu^2 (a variance) wherever the reference's is
            moved_state.slots["nu"][0] = (np.maximum(moved_state.slots["nu"][0][0],
                                                     moved_state.slots["mu"][0][0] ** 2), None)
        moved, _ = optimizer_update(o, moved_state, [(_moved(theta, d_theta, signs["theta"]), None)],
                                    [(_moved(g, d_g, signs["g"]), None)])
        change = np.abs(moved[0][0] - new[0][0])
        worst = max(worst, float(np.max(change / bound)))
        # first order: what is left beyond it is of second order in the inputs' relative errors (SAFETY's room)
        allowed = bound * (1 + SECOND_ORDER * relative) + 4 * U * (np.abs(new[0][0]) + np.abs(moved[0][0]))
        outside = change > allowed
        assert not outside.any(), (f"{name} after {steps} steps: entry {np.flatnonzero(outside)[0]} moved "
                                   f"{change[outside][0]:.3g} > bound {bound[outside][0]:.3g}")
    assert worst > 1e-3, f"{name}: the bound is {1 / worst:.3g}x the largest move: too loose to mean anything"


@pytest.mark.parametrize("name", ["adam-torch", "adam-optax", "rmsprop-torch", "rmsprop-optax"])
def test_the_first_step_direction_is_scale_free_and_its_bound_says_so(name):
    """Adam's and RMSprop's first direction is g / |g| times a constant: where eps is negligible, a relative
    error in g barely moves it. Taken as independent, m_hat and sqrt(v_hat) would each pass it on
    (2 rho |direction| in all); the model's median bound is under 1% of that."""
    o, rng = OPTIMIZERS[name], np.random.default_rng(3)
    theta, state = _state(o, 0, rng)
    g = _gradient(rng)
    new, after = optimizer_update(o, state, [(theta, None)], [(g, None)])
    zero = {slot: 0.0 * value for slot, value in _slots(state).items()}
    bound = rule_bound(o, 1, theta, g, 0.0 * theta, 1e-6 * np.abs(g), _slots(state), _slots(after), zero, U)
    independent = 2e-6 * np.abs(new[0][0] - theta)  # lr * 2 rho |direction|
    large = np.abs(g) > 0.1  # where eps is negligible (optax's RMSprop has it inside the root: sqrt(1e-8) = 1e-4)
    assert large.sum() > 300
    assert np.median(bound[large] / independent[large]) < 1e-2


def test_a_root_too_small_for_the_joint_bound_falls_back_to_the_independent_one_not_to_nan():
    # Sweep seed 8 drew adagrad(torch, initial_accumulator_value=2.2e-308, eps=1e-10) with g = 0 in float32: the
    # root 1.5e-154 makes the curvature term overflow, times a direction of 0: NaN, which had become the bound.
    o, u = Optimizer("adagrad", lr=0.1, initial_accumulator_value=2.2250738585072014e-308, eps=1e-10), 2.0**-24
    theta, g = np.array([0.5, 0.5]), np.array([0.0, 1e-3])
    state = init_state(o, [(theta, None)])
    _, after = optimizer_update(o, state, [(theta, None)], [(g, None)])
    d_state = {"sum_of_squares": np.array([3.98e-76, 0.0])}
    with np.errstate(all="raise"):  # and without a warning
        bound = rule_bound(o, 1, theta, g, u * theta, np.array([2e-38, u * 1e-3]), _slots(state), _slots(after),
                           d_state, u)
    assert np.isfinite(bound).all() and bound[0] < 4 * u * 0.5  # theta's roundings: a direction of 0 adds nothing


def test_a_nan_tolerance_is_refused_not_passed():
    from backprop_conformance.reference.network import Network
    from backprop_conformance.suite.assertions import measure

    context = dict(adapter="x", dtype="float64", quantity="params", name="W1",
                   network=Network((1, 1), ("identity",), "mse"))
    with pytest.raises(ValueError, match=r"x: params W1: the tolerance model allows NaN at \[1\]"):
        measure(np.array([1.0, 5.0]), np.array([1.0, 1.0]), np.array([1e-9, np.nan]), **context)
    assert measure(np.array([1.0, 5.0]), np.array([1.0, 1.0]), 1e-9, **context).ratio > 1


@pytest.mark.parametrize("t", [1, 10, 60, 400])
def test_a_bias_correction_in_float32_stays_within_its_relative_bound_division_included(t):
    # x / (1 - beta^t) in float32, beta^t by one pow or t products: 1 - beta^t rounds once and x / c once more,
    # which is all there is once beta^t is small beside 1: a bound of u there would be half of it
    from backprop_conformance.suite.tolerance_optimizers import _correction

    rng, u = np.random.default_rng(t), 2.0**-24
    beta = rng.uniform(0.5, 0.999, size=20_000).astype(np.float32)
    x = rng.normal(size=beta.size).astype(np.float32)
    exact = x.astype(np.float64) / (1.0 - beta.astype(np.float64) ** t)
    by_pow = x / (np.float32(1) - beta**np.float32(t))
    by_products = np.ones_like(beta)
    for _ in range(t):
        by_products = by_products * beta
    by_products = x / (np.float32(1) - by_products)
    allowed = _correction(beta.astype(np.float64), t, u)[1] * np.abs(exact)  # elementwise over the betas
    worst = max(float(np.max(np.abs(got - exact) / allowed)) for got in (by_pow, by_products))
    assert worst <= 1.0
    assert worst > 0.2  # tight enough to mean something (at t = 1, 1 - beta is exact: the division alone)
