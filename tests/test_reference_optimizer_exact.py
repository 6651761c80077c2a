"""The reference's optimizer update rules against exact math, one step at a time.

``reference.optimizer_rules`` states every rule's equations in its module
docstring, in both conventions (torch and optax). This test evaluates those
equations independently, entry by entry, in ``decimal`` at 50 significant
digits (+, -, *, / and sqrt correctly rounded there), from the reference's own
float64 params, state and gradient at that step (each converted exactly), so
every step is checked on its own and no error accumulates across steps. Every
new param and every state slot entry must lie within

    |float64 result - exact| <= 16 * 2**-53 * S,

S the sum of the absolute values of the terms of that quantity's last sum
(theta - lr d: |theta| + |lr d|; beta m + (1 - beta) g: |beta m| + |(1 - beta) g|).
That is a few roundings' worth (the data here stay under 2.5): a wrong
equation (eps on the wrong side of a root, a bias correction dropped,
dampening at the first step) is far outside it, and so is an error of 32
roundings in every new param.

Two refinements keep the bound honest without widening it elsewhere:

- with coupled weight decay, g + weight_decay theta is itself a float64 sum
  that may cancel; in the moments' S it counts as |g| + |weight_decay theta|.
- the powers beta^t of the bias corrections are taken as float64, correctly
  rounded (as ``beta**t`` is): 1 - beta^t is ill-conditioned near beta^t = 1
  (at beta2 = 0.999, rounding beta2^2 moves 1 - beta2^2 by 130 * 2**-53
  relative), an error of no equation; from the rounded power the subtraction
  is exact.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

from backprop_conformance.reference.optimizer_rules import OptimizerState, init_state, optimizer_update
from backprop_conformance.reference.optimizers import Optimizer

Pair = tuple[Decimal, Decimal]  # (exact value, its S)
Exact = dict[str, Pair]  # quantity -> (exact value, S)
Slots = dict[str, Decimal]  # slot -> its entry before the step
ONE, ZERO = Decimal(1), Decimal(0)
STEPS = 4
ROUNDINGS = 16


def _gradients(step: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Step ``step``'s gradient: normal entries scaled by 1e-3 to 10, a few exact zeros."""
    rng = np.random.default_rng(100 + step)
    w, b = (rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 1, size=shape) for shape in ((3, 2), (3,)))
    zeros = {1: ([(0, 0), (2, 1)], [1]), 2: ([(0, 0)], [1]), 3: ([(1, 0)], []), 4: ([], [2])}[step]
    for index in zeros[0]:
        w[index] = 0.0
    b[zeros[1]] = 0.0
    return [(w, b)]


_START = np.random.default_rng(7)
PARAMS = [(_START.normal(size=(3, 2)), _START.normal(size=3))]
GRADS = [_gradients(step) for step in range(1, STEPS + 1)]

CONFIGS = {
    "sgd-torch-plain": Optimizer("sgd", "torch", lr=0.1),
    "sgd-optax-plain": Optimizer("sgd", "optax", lr=0.1),
    "sgd-torch-momentum-dampening": Optimizer("sgd", "torch", lr=0.05, momentum=0.9, dampening=0.3),
    "sgd-torch-momentum": Optimizer("sgd", "torch", lr=0.05, momentum=0.9),
    "sgd-optax-momentum": Optimizer("sgd", "optax", lr=0.05, momentum=0.9),
    "sgd-torch-nesterov": Optimizer("sgd", "torch", lr=0.05, momentum=0.8, nesterov=True),
    "sgd-optax-nesterov": Optimizer("sgd", "optax", lr=0.05, momentum=0.8, nesterov=True),
    "sgd-torch-weight_decay": Optimizer("sgd", "torch", lr=0.1, momentum=0.5, weight_decay=0.3),
    "sgd-optax-weight_decay": Optimizer("sgd", "optax", lr=0.1, momentum=0.5, weight_decay=0.3),
    "adam-torch-default": Optimizer("adam", "torch"),
    "adam-optax-default": Optimizer("adam", "optax", lr=1e-3),
    "adam-torch-amsgrad": Optimizer("adam", "torch", lr=0.05, amsgrad=True),
    "adam-optax-amsgrad": Optimizer("adam", "optax", lr=0.05, amsgrad=True),
    "adam-optax-eps_root": Optimizer("adam", "optax", lr=0.05, eps_root=1e-3),
    "adam-optax-nesterov": Optimizer("adam", "optax", lr=0.05, nesterov=True),
    "adamw-optax-nesterov": Optimizer("adamw", "optax", lr=0.05, nesterov=True, weight_decay=0.5, betas=(0.8, 0.95)),
    "adam-torch-betas-large_eps": Optimizer("adam", "torch", lr=0.05, betas=(0.8, 0.95), eps=0.1),
    "adam-optax-betas-large_eps": Optimizer("adam", "optax", lr=0.05, betas=(0.8, 0.95), eps=0.1),
    "adam-torch-weight_decay": Optimizer("adam", "torch", lr=0.05, weight_decay=0.2),
    "adamw-torch-weight_decay": Optimizer("adamw", "torch", lr=0.05, weight_decay=0.5),
    "adamw-optax-weight_decay": Optimizer("adamw", "optax", lr=0.05, weight_decay=0.5),
    "adamw-torch-amsgrad": Optimizer("adamw", "torch", lr=0.05, amsgrad=True, betas=(0.7, 0.9)),
    "rmsprop-torch-plain": Optimizer("rmsprop", "torch", lr=0.01),
    "rmsprop-optax-plain": Optimizer("rmsprop", "optax", lr=0.01),
    "rmsprop-torch-centered": Optimizer("rmsprop", "torch", lr=0.01, centered=True),
    "rmsprop-optax-centered": Optimizer("rmsprop", "optax", lr=0.01, centered=True),
    "rmsprop-torch-momentum": Optimizer("rmsprop", "torch", lr=0.01, momentum=0.9),
    "rmsprop-optax-momentum": Optimizer("rmsprop", "optax", lr=0.01, momentum=0.9),
    "rmsprop-torch-centered-momentum-large_eps": Optimizer("rmsprop", "torch", lr=0.01, alpha=0.8, eps=0.1,
                                                           centered=True, momentum=0.5),
    "rmsprop-optax-centered-momentum-large_eps": Optimizer("rmsprop", "optax", lr=0.01, alpha=0.8, eps=0.1,
                                                           centered=True, momentum=0.5),
    "rmsprop-optax-bias_correction-initial_scale": Optimizer("rmsprop", "optax", lr=0.01, bias_correction=True,
                                                             initial_scale=0.3),
    "rmsprop-optax-eps_outside-centered-nesterov": Optimizer("rmsprop", "optax", lr=0.01, eps_in_sqrt=False,
                                                             centered=True, momentum=0.9, nesterov=True),
    "rmsprop-optax-bias_correction-nesterov-large_eps": Optimizer("rmsprop", "optax", lr=0.01, bias_correction=True,
                                                                  momentum=0.5, nesterov=True, eps=0.1,
                                                                  eps_in_sqrt=False),
    "rmsprop-optax-centered-bias_correction": Optimizer("rmsprop", "optax", lr=0.01, centered=True,
                                                        bias_correction=True),
    "rmsprop-optax-centered-bias_correction-eps_outside": Optimizer("rmsprop", "optax", lr=0.01, centered=True,
                                                                    bias_correction=True, eps_in_sqrt=False),
    "rmsprop-optax-centered-bias_correction-initial_scale": Optimizer("rmsprop", "optax", lr=0.01, centered=True,
                                                                      bias_correction=True, initial_scale=1e-8),
    "adagrad-torch-default": Optimizer("adagrad", "torch"),
    "adagrad-optax-default": Optimizer("adagrad", "optax", lr=0.1),
    "adagrad-torch-lr_decay": Optimizer("adagrad", "torch", lr=0.1, lr_decay=0.3),
    "adagrad-torch-initial_accumulator": Optimizer("adagrad", "torch", lr=0.1, initial_accumulator_value=0.5),
    "adagrad-optax-zero_accumulator": Optimizer("adagrad", "optax", lr=0.1, initial_accumulator_value=0.0),
    "adagrad-torch-weight_decay-large_eps": Optimizer("adagrad", "torch", lr=0.1, weight_decay=0.2, eps=0.1),
}


def _d(x: float) -> Decimal:
    return Decimal(float(x))


def _power(beta: Decimal, t: int) -> Decimal:
    """beta^t correctly rounded to float64, as the bias corrections take it (see the module docstring)."""
    return _d(float(beta**t))


def _minus(theta: Decimal, step: Decimal) -> Pair:
    """theta - step, with its S."""
    return theta - step, abs(theta) + abs(step)


def _average(beta: Decimal, before: Decimal, x: Decimal, size: Decimal, weight: Decimal | None = None) -> Pair:
    """beta before + weight x (weight 1 - beta), and its S: x's own size for |x| (see ``_exact``)."""
    weight = ONE - beta if weight is None else weight
    return beta * before + weight * x, abs(beta * before) + abs(weight) * size


def _sgd(o: Optimizer, t: int, theta: Decimal, g: Decimal, size: Decimal, s: Slots, out: Exact) -> None:
    d = g
    if o.momentum:
        momentum = _d(o.momentum)
        if o.convention == "torch" and t == 1:
            out["trace"] = (g, size)  # torch's first step: the buffer is g, dampening ignored
        else:
            out["trace"] = _average(momentum, s["trace"], g, size, ONE - _d(o.dampening))
        d = g + momentum * out["trace"][0] if o.nesterov else out["trace"][0]
    out["theta"] = _minus(theta, _d(o.lr) * d)


def _adam(o: Optimizer, t: int, theta: Decimal, g: Decimal, size: Decimal, s: Slots, out: Exact) -> None:
    beta1, beta2 = (_d(beta) for beta in o.betas)  # type: ignore[union-attr]
    lr, eps, decay = _d(o.lr), _d(o.eps), _d(o.weight_decay)
    decoupled = o.name == "adamw"
    out["mu"], out["nu"] = _average(beta1, s["mu"], g, size), _average(beta2, s["nu"], g * g, size**2)
    m, v = out["mu"][0], out["nu"][0]
    c1, c2 = ONE - _power(beta1, t), ONE - _power(beta2, t)
    if o.convention == "torch":
        if o.amsgrad:
            out["nu_max"] = (max(s["nu_max"], v), max(s["nu_max"], out["nu"][1]))
            v = out["nu_max"][0]
        step = lr / c1 * m / (v.sqrt() / c2.sqrt() + eps)
        start = theta * (ONE - lr * decay) if decoupled else theta
        out["theta"] = _minus(start, step)
        return
    v_hat = v / c2
    if o.amsgrad:
        out["nu_max"] = (max(s["nu_max"], v_hat), max(s["nu_max"], out["nu"][1] / c2))
        v_hat = out["nu_max"][0]
    m_hat = m / c1
    if o.nesterov:  # one step ahead: beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g / (1 - beta1^t)
        m_hat = beta1 * m / (ONE - _power(beta1, t + 1)) + (ONE - beta1) * g / c1
    direction = m_hat / ((v_hat + _d(o.eps_root)).sqrt() + eps)
    out["theta"] = _minus(theta, lr * (direction + decay * theta if decoupled else direction))


def _rmsprop(o: Optimizer, t: int, theta: Decimal, g: Decimal, size: Decimal, s: Slots, out: Exact) -> None:
    alpha, eps, lr = _d(o.alpha), _d(o.eps), _d(o.lr)
    out["nu"] = _average(alpha, s["nu"], g * g, size**2)
    correction = ONE - _power(alpha, t) if o.bias_correction else ONE
    variance = out["nu"][0] / correction
    if o.centered:
        out["mu"] = _average(alpha, s["mu"], g, size)
        variance -= (out["mu"][0] / correction) ** 2
    scaled = g / ((variance + eps).sqrt() if o.eps_in_sqrt else variance.sqrt() + eps)
    if o.momentum:
        old = _d(o.momentum) * s["trace"]
        out["trace"] = (old + scaled, abs(old) + abs(scaled))
        scaled = scaled + _d(o.momentum) * out["trace"][0] if o.nesterov else out["trace"][0]
    out["theta"] = _minus(theta, lr * scaled)


def _adagrad(o: Optimizer, t: int, theta: Decimal, g: Decimal, size: Decimal, s: Slots, out: Exact) -> None:
    total = s["sum_of_squares"] + g * g
    out["sum_of_squares"] = (total, s["sum_of_squares"] + size**2)
    lr, eps = _d(o.lr), _d(o.eps)
    if o.convention == "torch":
        step = lr / (ONE + (t - 1) * _d(o.lr_decay)) * g / (total.sqrt() + eps)
    else:
        step = lr * (g / (total + eps).sqrt() if total != 0 else ZERO)  # optax: 0 where S_t = 0
    out["theta"] = _minus(theta, step)


RULES = {"sgd": _sgd, "adam": _adam, "adamw": _adam, "rmsprop": _rmsprop, "adagrad": _adagrad}


def _exact(o: Optimizer, t: int, theta: float, gradient: float, slots: dict[str, float]) -> Exact:
    """Every quantity after one step from these float64 inputs: a slot the step leaves alone stays, S = 0.

    With coupled weight decay the moments take g + weight_decay theta, rounded once in float64 where the two
    may cancel: there |g| + |weight_decay theta| (that sum's S) stands for |g| in the moments' S.
    """
    theta_, g, s = _d(theta), _d(gradient), {name: _d(value) for name, value in slots.items()}
    size = abs(g)
    if o.weight_decay and o.name != "adamw":
        decay = _d(o.weight_decay) * theta_  # coupled weight decay
        g, size = g + decay, size + abs(decay)
    out: Exact = {name: (value, ZERO) for name, value in s.items()}
    RULES[o.name](o, t, theta_, g, size, s, out)
    return out


def _failures(o: Optimizer, t: int, params: list, state: OptimizerState, grads: list, new_params: list,
              new_state: OptimizerState) -> list[str]:
    """Every quantity of step ``t`` outside the bound, described."""
    unit, found = Decimal(2) ** -53, []
    for layer, pair in enumerate(params):
        for kind, theta in enumerate(pair):
            for index in np.ndindex(theta.shape):
                slots = {name: arrays[layer][kind][index] for name, arrays in state.slots.items()}
                exact = _exact(o, t, theta[index], grads[layer][kind][index], slots)
                got = {name: arrays[layer][kind][index] for name, arrays in new_state.slots.items()}
                got["theta"] = new_params[layer][kind][index]
                assert got.keys() == exact.keys()
                for name, (value, total) in exact.items():
                    error = abs(_d(got[name]) - value)
                    if error > ROUNDINGS * unit * total:
                        ratio = float(error / unit / total) if total else float("inf")
                        found.append(f"step {t} {'Wb'[kind]}{layer + 1}{list(index)} {name}: got {got[name]!r}, "
                                     f"exact {value:.20e}, error {ratio:.3g} * 2**-53 * S, S = {float(total):.3g}")
    return found


@pytest.mark.parametrize("optimizer", list(CONFIGS.values()), ids=list(CONFIGS))
def test_every_step_matches_exact_math(optimizer: Optimizer) -> None:
    """The state starts as the rule says, and each of 4 steps lands within the bound of the exact step."""
    params, state = PARAMS, init_state(optimizer, PARAMS)
    starts = {"sum_of_squares": optimizer.initial_accumulator_value, "nu": optimizer.initial_scale}  # all else 0
    assert state.count == 0
    assert all(np.all(array == (starts.get(slot) or 0.0))
               for slot, arrays in state.slots.items() for pair in arrays for array in pair)
    with localcontext() as context:
        context.prec = 50
        for t, grads in enumerate(GRADS, start=1):
            new_params, new_state = optimizer_update(optimizer, state, params, grads)
            assert new_state.count == t
            failures = _failures(optimizer, t, params, state, grads, new_params, new_state)
            assert not failures, f"{optimizer.describe()}:\n" + "\n".join(failures)
            params, state = new_params, new_state


@pytest.mark.parametrize("optimizer", list(CONFIGS.values()), ids=list(CONFIGS))
def test_the_steps_move_every_param(optimizer: Optimizer) -> None:
    """Over the 4 steps every param entry moves: none is checked only where it stands still."""
    params, state = PARAMS, init_state(optimizer, PARAMS)
    for grads in GRADS:
        params, state = optimizer_update(optimizer, state, params, grads)
    for before, after in zip(PARAMS[0], params[0], strict=True):
        assert np.all(before != after)
