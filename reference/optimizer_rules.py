"""The update rules of ``reference.optimizers``, in float64, one equation per line.

Every rule is elementwise: for each parameter array theta with gradient g
(after coupled weight decay, g <- g + weight_decay * theta, where the rule
has it), and state named in optax's style: ``count`` (steps taken), ``mu``
(first moment, or the momentum ``trace``), ``nu`` (second moment),
``nu_max`` (AMSGrad), ``sum_of_squares`` (Adagrad). t is the step number,
counted from 1. The two conventions, side by side:

sgd       torch: b_1 = g; b_t = momentum b_{t-1} + (1 - dampening) g            (no dampening at t = 1)
          optax: b_t = momentum b_{t-1} + g, b_0 = 0                            (the same when dampening = 0)
          d = g + momentum b_t (nesterov) or b_t;    theta <- theta - lr d
adam      m_t = beta1 m + (1 - beta1) g;  v_t = beta2 v + (1 - beta2) g^2
          torch: theta <- theta - lr/(1 - beta1^t) m_t / (sqrt(v_t)/sqrt(1 - beta2^t) + eps)
          optax: theta <- theta - lr m_t/(1 - beta1^t) / (sqrt(v_t/(1 - beta2^t) + eps_root) + eps)
          optax, nesterov: m_t/(1 - beta1^t) is beta1 m_t/(1 - beta1^(t+1)) + (1 - beta1) g/(1 - beta1^t)
  amsgrad torch: the maximum of the raw v_t, divided by sqrt(1 - beta2^t) of this step
          optax: the maximum of the bias-corrected v_t/(1 - beta2^t)
adamw     torch: theta <- theta (1 - lr weight_decay), then adam's step without decay
          optax: theta <- theta - lr (adam's direction + weight_decay theta)
rmsprop   v_t = alpha v + (1 - alpha) g^2, v_0 = initial_scale;  centered: c_t = alpha c + (1 - alpha) g,
          v_t - c_t^2 below;  bias_correction: v_t/(1 - alpha^t) and c_t/(1 - alpha^t) in their place
          (at t = 1 the corrected v_1 - c_1^2 expanded: alpha v_0/(1 - alpha) from c_0 = 0, nothing cancels)
          torch: s = sqrt(v_t) + eps;  optax: s = sqrt(v_t + eps) (eps_in_sqrt=False: torch's s)
          momentum: b_t = momentum b + g / s, theta <- theta - lr b_t (nesterov: - lr (g / s + momentum b_t));
          else theta <- theta - lr g / s
adagrad   S_t = S_{t-1} + g^2, S_0 = initial_accumulator_value
          torch: theta <- theta - lr/(1 + (t - 1) lr_decay) g / (sqrt(S_t) + eps)
          optax: theta <- theta - lr g / sqrt(S_t + eps), and 0 where S_t = 0
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from backprop_conformance.reference.blocks import blockwise, scratch
from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.network import Params
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.overflow import UpdateOverflow

#: Each rule's state arrays, beside ``count``.
SLOTS = {"sgd": ("trace",), "adam": ("mu", "nu", "nu_max"), "adamw": ("mu", "nu", "nu_max"),
         "rmsprop": ("nu", "mu", "trace"), "adagrad": ("sum_of_squares",)}


@dataclass(frozen=True)
class OptimizerState:
    """``count`` steps taken, and each slot's arrays in the params' structure ([(W, b), ...])."""

    count: int = 0
    slots: Mapping[str, Params] = field(default_factory=dict)

    def __getitem__(self, slot: str) -> Params:
        return self.slots[slot]


#: Where a rule writes its results: each name's array (``theta`` and the slots), or a new one where absent.
#: Every rule reads a slot before it writes it and writes theta last, reading nothing after: so a slot may
#: go over itself and theta over the gradient (``optimizer_update``'s ``overwrite``).
Out = Mapping[str, np.ndarray]
NEW: Out = MappingProxyType({})


def _filled(params: Params, value: float) -> Params:
    return [(np.full_like(w, value), None if b is None else np.full_like(b, value)) for w, b in params]


def init_state(optimizer: Optimizer, params: Params) -> OptimizerState:
    """Return the state before the first step: zeros (Adagrad: ``initial_accumulator_value``; RMSprop's nu:
    ``initial_scale``)."""
    start = {"sum_of_squares": optimizer.initial_accumulator_value or 0.0, "nu": optimizer.initial_scale or 0.0}
    return OptimizerState(0, {slot: _filled(params, start.get(slot, 0.0)) for slot in SLOTS[optimizer.name]})


def _sgd(o: Optimizer, t: int, theta: np.ndarray, g: np.ndarray, s: dict, out: Out = NEW) -> np.ndarray:
    if o.momentum:
        if o.convention == "torch" and t == 1:
            s["trace"] = g.copy()
        else:
            s["trace"] = np.add(o.momentum * s["trace"], (1.0 - o.dampening) * g, out=out.get("trace"))
        g = g + o.momentum * s["trace"] if o.nesterov else s["trace"]
    return np.subtract(theta, o.lr * g, out=out.get("theta"))


def _average(beta: float, before: np.ndarray, g: np.ndarray, square: bool, out: np.ndarray | None,
             a: np.ndarray) -> np.ndarray:
    """Return beta before + (1 - beta) g (g^2 where ``square``), into ``out``, with ``a`` as scratch.

    In place, with no temporaries: (1 - beta) g or (g g)(1 - beta) into ``a``, beta before into ``out``, the sum.
    """
    if square:
        np.square(g, out=a)
        a *= 1.0 - beta  # two passes over one array: cheaper than (1 - beta) g, then times g
    else:
        np.multiply(g, 1.0 - beta, out=a)
    after = np.multiply(before, beta, out=out)
    after += a
    return after


def _adam(o: Optimizer, t: int, theta: np.ndarray, g: np.ndarray, s: dict, out: Out = NEW) -> np.ndarray:
    # In place, into scratch (speed), one operation a line; its equation beside it.
    beta1, beta2 = o.betas
    if o.name == "adamw" and o.convention == "torch":
        theta = theta * (1.0 - o.lr * o.weight_decay)
    a, b = scratch(g)
    s["mu"] = mu = _average(beta1, s["mu"], g, False, out.get("mu"), a)  # m_t = beta1 m + (1 - beta1) g
    s["nu"] = nu = _average(beta2, s["nu"], g, True, out.get("nu"), a)  # v_t = beta2 v + (1 - beta2) g g
    correction1, correction2 = 1.0 - beta1**t, 1.0 - beta2**t
    if o.convention == "torch":
        if o.amsgrad:
            s["nu_max"] = nu = np.maximum(s["nu_max"], nu, out=out.get("nu_max"))
        # lr/c1 m / (sqrt(v)/sqrt(c2) + eps) = (lr sqrt(c2)/c1) m / (sqrt(v) + eps sqrt(c2)): one division fewer
        root2 = math.sqrt(correction2)
        np.sqrt(nu, out=a)
        a += o.eps * root2 or o.eps  # a = sqrt(v_t) + eps sqrt(1 - beta2^t); eps where that underflows to 0
        np.divide(mu, a, out=a)
        a *= o.lr * root2 / correction1  # a = lr sqrt(1 - beta2^t) / (1 - beta1^t) m_t / a
        return np.subtract(theta, a, out=out.get("theta"))
    nu_hat = np.divide(nu, correction2, out=a)  # v_t / (1 - beta2^t)
    if o.amsgrad:
        s["nu_max"] = nu_hat = np.maximum(s["nu_max"], nu_hat, out=out.get("nu_max"))
    np.sqrt(np.add(nu_hat, o.eps_root, out=a), out=a)
    a += o.eps  # a = sqrt(v_hat + eps_root) + eps
    if o.nesterov:  # beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g / (1 - beta1^t)
        first = beta1 * (mu / (1.0 - beta1 ** (t + 1))) + (1.0 - beta1) * (g / correction1)
        direction = np.divide(first, a, out=a)
    else:
        direction = np.divide(np.divide(mu, correction1, out=b), a, out=a)  # m_t / (1 - beta1^t) / a
    if o.name == "adamw":
        direction += np.multiply(theta, o.weight_decay, out=b)  # ... + weight_decay theta
    direction *= o.lr
    return np.subtract(theta, direction, out=out.get("theta"))


def first_centered_variance(alpha: float, nu: np.ndarray, mu: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Return centered RMSprop's bias-corrected variance at t = 1 from the state before it, without cancellation.

    v_1 / (1 - alpha) - (c_1 / (1 - alpha))^2 is (g g + ...) - (g g + ...): with c_0 = 0 and v_0 = 0 it is
    g g - g g = 0, which the difference leaves as a rounding residue of about 1e-16 g g, either sign, beside
    an eps that may be smaller still. Expanded, the g g terms cancel exactly:
    alpha / (1 - alpha) (v_0 - alpha c_0^2 / (1 - alpha) - 2 c_0 g), which is alpha v_0 / (1 - alpha) from
    ``init_state`` (v_0 = initial_scale, c_0 = 0).
    """
    return alpha / (1.0 - alpha) * (nu - (alpha / (1.0 - alpha)) * (mu * mu) - 2.0 * mu * g)


def _rmsprop(o: Optimizer, t: int, theta: np.ndarray, g: np.ndarray, s: dict, out: Out = NEW) -> np.ndarray:
    a = scratch(g, 1)[0]
    first = o.centered and o.bias_correction and t == 1
    exact = first_centered_variance(o.alpha, s["nu"], s["mu"], g) if first else None  # type: ignore[arg-type]
    s["nu"] = _average(o.alpha, s["nu"], g, True, out.get("nu"), a)  # v_t = alpha v + (1 - alpha) g g
    correction = 1.0 - o.alpha**t  # type: ignore[operator]
    variance = s["nu"] / correction if o.bias_correction else s["nu"]
    if o.centered:
        s["mu"] = _average(o.alpha, s["mu"], g, False, out.get("mu"), a)  # c_t = alpha c + (1 - alpha) g
        centre = s["mu"] / correction if o.bias_correction else s["mu"]
        # >= 0 in exact math; the first bias-corrected step's, computed so that nothing cancels
        variance = np.maximum(variance - centre * centre if exact is None else exact, 0.0)
    scale = np.sqrt(variance + o.eps) if o.eps_in_sqrt else np.sqrt(variance) + o.eps
    direction = g / scale
    if o.momentum:
        s["trace"] = np.add(o.momentum * s["trace"], direction, out=out.get("trace"))
        direction = direction + o.momentum * s["trace"] if o.nesterov else s["trace"]
    return np.subtract(theta, o.lr * direction, out=out.get("theta"))


def _adagrad(o: Optimizer, t: int, theta: np.ndarray, g: np.ndarray, s: dict, out: Out = NEW) -> np.ndarray:
    s["sum_of_squares"] = np.add(s["sum_of_squares"], g * g, out=out.get("sum_of_squares"))
    total = s["sum_of_squares"]
    if o.convention == "torch":
        step = (o.lr / (1.0 + (t - 1) * o.lr_decay)) * g / (np.sqrt(total) + o.eps)
        return np.subtract(theta, step, out=out.get("theta"))
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(total > 0, g / np.sqrt(total + o.eps), 0.0)
    return np.subtract(theta, o.lr * step, out=out.get("theta"))


RULES = {"sgd": _sgd, "adam": _adam, "adamw": _adam, "rmsprop": _rmsprop, "adagrad": _adagrad}


def _coupled_decay(optimizer: Optimizer) -> float:
    """The weight decay added to the gradient (all but AdamW's, which is decoupled)."""
    return 0.0 if optimizer.name == "adamw" else optimizer.weight_decay or 0.0


def written_slots(optimizer: Optimizer) -> tuple[str, ...]:
    """The slots a step of ``optimizer`` writes; it passes the others on as they are (``nu_max`` without amsgrad)."""
    o = optimizer
    return {"sgd": ("trace",) * bool(o.momentum), "adam": ("mu", "nu") + ("nu_max",) * bool(o.amsgrad),
            "rmsprop": ("nu",) + ("mu",) * bool(o.centered) + ("trace",) * bool(o.momentum),
            "adagrad": ("sum_of_squares",)}["adam" if o.name == "adamw" else o.name]


#: The largest buffer ``_new_state_arrays`` makes (bytes): glibc's ceiling for reusing freed blocks (its largest
#: mmap threshold on 64-bit systems). A buffer above it is mapped afresh by every step, every page faulting.
ONE_BUFFER_LIMIT = 32 << 20


def _new_state_arrays(state: OptimizerState, slots: Collection[str]) -> dict[str, list[list[np.ndarray | None]]]:
    """New float64 arrays shaped as ``state[slot]`` for each of ``slots``, all views of one new buffer.

    One allocation instead of one per array (speed): glibc hands freed blocks
    back to the kernel when several large ones are freed together, and every
    page of a new block faults on its first write: in ``backprop bench``'s
    worker, the public Adam step at 784-256-256-10 made 471 page faults a
    step without it and took a third longer (how many depends on the
    process's allocation history: 0 to 730 in other runs). Above
    ``ONE_BUFFER_LIMIT`` none (an empty dict): each array is then allocated
    on its own, as glibc reuses blocks of that size.
    """
    arrays = [(slot, layer, kind, array) for slot in slots for layer, pair in enumerate(state.slots[slot])
              for kind, array in enumerate(pair) if array is not None]
    total = sum(array.size for *_, array in arrays)
    if total * 8 > ONE_BUFFER_LIMIT:
        return {}
    buffer, start = np.empty(total), 0
    views: dict[str, list[list[np.ndarray | None]]] = {
        slot: [[None, None] for _ in state.slots[slot]] for slot in slots}
    for slot, layer, kind, array in arrays:
        views[slot][layer][kind] = buffer[start : start + array.size].reshape(array.shape)
        start += array.size
    return views


def optimizer_update(optimizer: Optimizer, state: OptimizerState, params: Params, grads: Params,
                     overwrite: Collection[str] = ()) -> tuple[Params, OptimizerState]:
    """Return the params after one step of ``optimizer`` and the new state; the inputs are left untouched.

    Unless ``overwrite`` names arrays the caller owns, for the update to write
    its results into instead of new ones (speed): ``"params"`` and ``"state"``
    (the new values over the old), or ``"grads"`` (the new params over the
    gradients). The numbers are the same; use the arrays returned. Arrays
    named must not share memory with one another (two slots in one array).
    """
    t, rule, decay = state.count + 1, RULES[optimizer.name], _coupled_decay(optimizer)
    slots = {slot: [list(pair) for pair in arrays] for slot, arrays in state.slots.items()}

    def step(arrays: Mapping[str, np.ndarray], into: Out) -> dict[str, np.ndarray]:
        theta, gradient = arrays["theta"], arrays["gradient"]
        own = {slot: arrays[slot] for slot in slots}
        g = gradient + decay * theta if decay else gradient
        return {"theta": rule(optimizer, t, theta, g, own, into), **own}

    fresh = None if "state" in overwrite else _new_state_arrays(state, written_slots(optimizer))
    updated = []
    for layer, ((weight, bias), (d_weight, d_bias)) in enumerate(zip(params, grads)):
        pair = []
        for kind, theta, gradient in ((0, weight, d_weight), (1, bias, d_bias)):
            if theta is None:
                pair.append(None)
                continue
            own = {slot: slots[slot][layer][kind] for slot in slots}
            into = dict(own) if fresh is None else {slot: fresh[slot][layer][kind] for slot in fresh}
            if "params" in overwrite or "grads" in overwrite:
                into["theta"] = theta if "params" in overwrite else gradient
            try:  # large arrays block by block (speed): the same numbers (reference.blocks)
                new = blockwise(step, {"theta": theta, "gradient": gradient, **own}, into)
            except FloatingPointError:  # under overflow.raising: name the array
                raise UpdateOverflow(parameter_name(layer + 1, "Wb"[kind])) from None
            pair.append(new["theta"])
            for slot in slots:
                slots[slot][layer][kind] = new[slot]
        updated.append((pair[0], pair[1]))
    return updated, OptimizerState(t, {slot: [(w, b) for w, b in arrays] for slot, arrays in slots.items()})
