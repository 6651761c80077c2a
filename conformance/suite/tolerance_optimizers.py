"""The tolerance model through the optimizers' update rules (``reference.optimizer_rules``).

First-order running-error analysis, entry by entry, as ``suite.tolerances``
does for the pass: every quantity q of the rule carries a bound dq on how
far a faithful implementation in the dtype (unit roundoff u) may be from the
reference's float64 value, and each operation adds u |result|. What flows in
is the gradient's bound dg (``error_bounds`` with the params' carried error)
plus, with coupled weight decay, weight_decay * dtheta. Per rule:

    moments      d(beta m + (1 - beta) g)  = beta dm + (1 - beta) dg + 3u(|beta m| + |(1 - beta) g|)
                 d(beta v + (1 - beta) g^2) = beta dv + (1 - beta)(2|g| dg + dg^2) + 4u(...)
    bias corr.   c = 1 - beta^t in the dtype, then x / c:  d(x / c) = dx / c + |x / c| ((t + 1) u beta^t / c + 2u)
    square root  d sqrt(v) = min(dv / (2 sqrt(v)), sqrt(dv)) + u sqrt(v)   (sqrt is not Lipschitz at 0)
    quotient     d(n / s) = dn / s + |n| ds / s^2 + u |n / s|; where n and s both move with g
                 (Adam's m_hat / (sqrt(v_hat) + eps), RMSprop's and Adagrad's g / root), the
                 smaller of that and the bound through their joint first-order change
                 (``_together``: at Adam's and RMSprop's first step the direction is g / |g|
                 times a constant, barely moved by a relative error in g)
    max          d max(a, b) <= max(da, db)          (AMSGrad's running maximum)
    step         d(theta - lr d) = dtheta + lr dd + u(|theta| + 2 lr |d| + |theta'|)

The state's bounds (``mu``, ``nu``, ``trace``, ...) are carried from step to
step like the params'. What the model does not promise: a step whose
denominator (sqrt(v) + eps, sqrt(v + eps), sqrt(S) + eps, the centered
variance) is not known to within half its size, which is where a gradient
below its own rounding error meets an eps too small to dominate: the update
is then anywhere between 0 and lr per entry, and ``OutsideModel`` says so.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.reference.optimizer_rules import first_centered_variance
from backprop_conformance.reference.optimizers import Optimizer

#: A denominator whose bound exceeds this fraction of it is not determined: outside the model.
MAX_DENOMINATOR_UNCERTAINTY = 0.5

Array = np.ndarray
Slots = dict[str, Array]


class DenominatorUndetermined(Exception):
    """A rule's denominator is not known to within MAX_DENOMINATOR_UNCERTAINTY of itself."""


def _sqrt(value: np.ndarray, bound: np.ndarray, u: float) -> np.ndarray:
    root = np.sqrt(np.maximum(value, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = np.where(root > 0, bound / (2 * root), np.inf)
    return np.minimum(linear, np.sqrt(bound)) + u * root


def _quotient(numerator: np.ndarray, d_numerator: np.ndarray, denominator: np.ndarray,
              d_denominator: np.ndarray, u: float, what: str) -> np.ndarray:
    if np.any(d_denominator > MAX_DENOMINATOR_UNCERTAINTY * denominator):
        raise DenominatorUndetermined(what)
    quotient = numerator / denominator
    return d_numerator / denominator + np.abs(numerator) * d_denominator / denominator**2 + u * np.abs(quotient)


def _together(direction: np.ndarray, independent: np.ndarray, n_g: np.ndarray | float, d_n: np.ndarray | float,
              v_g: np.ndarray, d_v: np.ndarray, d_v_all: np.ndarray, root: np.ndarray,
              denominator: np.ndarray, d_denominator: np.ndarray, d_round: np.ndarray, dg: np.ndarray,
              u: float) -> np.ndarray:
    """Return the bound on direction = n / (root + eps') with n and v (root = sqrt(v)) both moving with g.

    ``_quotient`` adds the numerator's and the denominator's bounds as if they
    were independent; in Adam, RMSprop and Adagrad both come from the same g,
    and their effects cancel (at RMSprop's first step n / sqrt(v) is g / |g|
    over a constant: no first-order dependence on g at all). Exactly,

        s' - s = (dn - s dD) / D',    dn = n_g dg + (the rest of n's error),
                                      dD = dv / (2 root) + curvature + D's own roundings,
                                      dv = v_g dg + (the rest of v's error),

    so |s' - s| <= (|n_g - s v_g / (2 root)| dg + d_n + |s| (d_v / (2 root)
    + d_v_all^2 / (2 root^3) + d_round)) / (D (1 - d_D / D)) + u |s|: ``d_n`` and ``d_v``
    are the errors n and v carry besides g's first-order part (the state's,
    the roundings, dg^2), the curvature term bounds sqrt's second order, and
    D' >= D (1 - d_D / D) holds where the denominator is determined. The
    smaller of this and the independent bound holds; where root = 0 only the
    independent one (sqrt is not differentiable there), and where this one is
    not a number (a root so small that its curvature term overflows, times
    a direction of 0) the independent one too: ``np.fmin`` takes it over NaN.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        slope = 1.0 / (2.0 * root)
        numerator = (np.abs(n_g - direction * slope * v_g) * dg + d_n
                     + np.abs(direction) * (slope * d_v + d_v_all**2 * slope / (root * root) + d_round))
        together = numerator / (denominator - d_denominator) + u * np.abs(direction)
    return np.where(root > 0, np.fmin(together, independent), independent)


def _moment(beta: float, before: np.ndarray, d_before: np.ndarray, g: np.ndarray, dg: np.ndarray,
            u: float, power: int) -> np.ndarray:
    if power == 1:
        return beta * d_before + (1 - beta) * dg + 3 * u * (np.abs(beta * before) + np.abs((1 - beta) * g))
    return beta * d_before + (1 - beta) * (2 * np.abs(g) * dg + dg * dg) + 4 * u * (beta * before + (1 - beta) * g * g)


def _correction(beta: float, t: int, u: float) -> tuple[float, float]:
    """Return c = 1 - beta^t and the relative bound that dividing by it adds to a quotient x / c.

    beta^t by repeated products carries t u beta^t; 1 - beta^t adds one rounding, and x / c another: where
    beta^t underflows beside 1 these two are all there is (2u, not u).
    """
    c = 1.0 - beta**t
    return c, (t + 1) * u * beta**t / c + 2 * u


def _step(theta: np.ndarray, d_theta: np.ndarray, lr: float, direction: np.ndarray, d_direction: np.ndarray,
          u: float) -> np.ndarray:
    new = theta - lr * direction
    return d_theta + lr * d_direction + u * (np.abs(theta) + 2 * lr * np.abs(direction) + np.abs(new))


def _sgd(o: Optimizer, t: int, theta: Array, g: Array, dtheta: Array, dg: Array,
         before: Slots, after: Slots, d: Slots, u: float) -> Array:
    direction, d_direction = g, dg
    if o.momentum:
        trace = after["trace"]
        if o.convention == "torch" and t == 1:
            d["trace"] = dg
        else:
            d["trace"] = (o.momentum * d["trace"] + (1 - o.dampening) * dg
                          + 2 * u * (np.abs(o.momentum * before["trace"]) + np.abs((1 - o.dampening) * g)))
        direction, d_direction = trace, d["trace"]
        if o.nesterov:
            direction = g + o.momentum * trace
            d_direction = dg + o.momentum * d["trace"] + 2 * u * np.abs(direction)
    return _step(theta, dtheta, o.lr, direction, d_direction, u)


def _adam(o: Optimizer, t: int, theta: Array, g: Array, dtheta: Array, dg: Array,
          before: Slots, after: Slots, d: Slots, u: float) -> Array:
    beta1, beta2 = o.betas  # type: ignore[misc]
    d["mu"] = _moment(beta1, before["mu"], d["mu"], g, dg, u, 1)
    d["nu"] = _moment(beta2, before["nu"], d["nu"], g, dg, u, 2)
    c1, r1 = _correction(beta1, t, u)
    c2, r2 = _correction(beta2, t, u)
    if o.amsgrad:
        if o.convention == "torch":
            d["nu_max"] = np.maximum(d["nu_max"], d["nu"])
            second, d_second = after["nu_max"] / c2, d["nu_max"] / c2 + r2 * after["nu_max"] / c2
        else:
            d["nu_max"] = np.maximum(d["nu_max"], d["nu"] / c2 + r2 * after["nu"] / c2)
            second, d_second = after["nu_max"], d["nu_max"]
    else:
        second, d_second = after["nu"] / c2, d["nu"] / c2 + r2 * after["nu"] / c2
    root = np.sqrt(second + o.eps_root)
    d_denominator = _sqrt(second + o.eps_root, d_second + u * (second + o.eps_root), u) + u * (root + o.eps)
    first = after["mu"] / c1
    d_first = d["mu"] / c1 + r1 * np.abs(first)
    n_g = (1 - beta1) / c1  # d first / d g
    if o.nesterov:  # optax: beta1 m_t / (1 - beta1^(t+1)) + (1 - beta1) g / (1 - beta1^t)
        c1_next, r1_next = _correction(beta1, t + 1, u)
        ahead, now = beta1 * after["mu"] / c1_next, (1 - beta1) * g / c1
        first = ahead + now
        d_first = (beta1 * d["mu"] / c1_next + r1_next * np.abs(ahead) + (1 - beta1) * dg / c1 + r1 * np.abs(now)
                   + 3 * u * (np.abs(ahead) + np.abs(now)))
        n_g = beta1 * (1 - beta1) / c1_next + (1 - beta1) / c1
    direction = first / (root + o.eps)
    d_direction = _quotient(first, d_first, root + o.eps, d_denominator, u, "adam's sqrt(v_hat) + eps")
    if not o.amsgrad:  # m_hat and v_hat both move with g (AMSGrad's maximum: the independent bound only)
        d_v = (d["nu"] - (1 - beta2) * 2 * np.abs(g) * dg) / c2 + r2 * second + u * (second + o.eps_root)
        d_direction = _together(direction, d_direction, n_g, d_first - n_g * dg,
                                2 * (1 - beta2) * g / c2, d_v, d_second + u * (second + o.eps_root), root,
                                root + o.eps, d_denominator, 2 * u * root + u * (root + o.eps), dg, u)
    if o.name == "adamw":
        decay = o.weight_decay * theta
        if o.convention == "torch":
            theta_decayed = theta * (1 - o.lr * o.weight_decay)
            dtheta = dtheta * (1 - o.lr * o.weight_decay) + 2 * u * np.abs(theta_decayed)
            theta = theta_decayed
        else:
            direction = direction + decay
            d_direction = d_direction + o.weight_decay * dtheta + 2 * u * (np.abs(decay) + np.abs(direction))
    return _step(theta, dtheta, o.lr, direction, d_direction, u)


def _rmsprop(o: Optimizer, t: int, theta: Array, g: Array, dtheta: Array, dg: Array,
             before: Slots, after: Slots, d: Slots, u: float) -> Array:
    alpha: float = o.alpha  # type: ignore[assignment]
    d["nu"] = _moment(alpha, before["nu"], d["nu"], g, dg, u, 2)
    c, r = _correction(alpha, t, u) if o.bias_correction else (1.0, 0.0)  # bias correction: v_t / c, c_t / c
    variance, d_variance, centre = after["nu"] / c, d["nu"] / c + r * after["nu"] / c, 0.0
    if o.centered:
        d["mu"] = _moment(alpha, before["mu"], d["mu"], g, dg, u, 1)
        centre, d_centre = after["mu"] / c, d["mu"] / c + r * np.abs(after["mu"] / c)
        d_variance = d_variance + 2 * np.abs(centre) * d_centre + d_centre**2 + 2 * u * (variance + centre**2)
        # the reference's value, which at the first corrected step is expanded (optimizer_rules); the bound above
        # is the difference's, as optax takes it: 2u (v + c^2) of cancellation
        variance = (first_centered_variance(alpha, before["nu"], before["mu"], g) if o.bias_correction and t == 1
                    else variance - centre * centre)
    v_g = 2 * (1 - alpha) * (g - centre) / c  # d variance / d g (centre = 0 uncentered)
    d_v = d_variance - 2 * (1 - alpha) * (np.abs(g) + np.abs(centre)) * dg / c  # its error besides v_g dg
    if not o.eps_in_sqrt:  # torch's rule, and optax's with eps_in_sqrt=False
        root = np.sqrt(np.maximum(variance, 0.0))
        denominator, d_all = root + o.eps, d_variance
        d_denominator, d_round = _sqrt(variance, d_all, u) + u * denominator, 2 * u * denominator
    else:
        root = denominator = np.sqrt(np.maximum(variance, 0.0) + o.eps)
        d_all = d_variance + u * (variance + o.eps)
        d_denominator, d_round, d_v = _sqrt(variance + o.eps, d_all, u), u * denominator, d_v + u * (variance + o.eps)
    direction = g / denominator
    d_direction = _quotient(g, dg, denominator, d_denominator, u, "rmsprop's root of the (centered) mean square")
    d_direction = _together(direction, d_direction, 1.0, 0.0, v_g, d_v, d_all, root, denominator, d_denominator,
                            d_round, dg, u)
    if o.momentum:
        d["trace"] = o.momentum * d["trace"] + d_direction + 2 * u * (np.abs(o.momentum * before["trace"])
                                                                       + np.abs(direction))
        if o.nesterov:  # optax: g / s + momentum b_t
            ahead = o.momentum * after["trace"]
            d_direction = d_direction + o.momentum * d["trace"] + u * (np.abs(ahead) + 2 * np.abs(direction + ahead))
            direction = direction + ahead
        else:
            direction, d_direction = after["trace"], d["trace"]
    return _step(theta, dtheta, o.lr, direction, d_direction, u)


def _adagrad(o: Optimizer, t: int, theta: Array, g: Array, dtheta: Array, dg: Array,
             before: Slots, after: Slots, d: Slots, u: float) -> Array:
    total = after["sum_of_squares"]
    d["sum_of_squares"] = d["sum_of_squares"] + 2 * np.abs(g) * dg + dg * dg + 2 * u * total  # S + g g: two roundings
    d_v = d["sum_of_squares"] - 2 * np.abs(g) * dg  # S's error besides g's first-order part
    if o.convention == "torch":
        lr = o.lr / (1 + (t - 1) * o.lr_decay)  # type: ignore[operator]
        root = np.sqrt(total)
        denominator, d_all = root + o.eps, d["sum_of_squares"]
        d_denominator, d_round = _sqrt(total, d_all, u) + u * denominator, 2 * u * denominator
    else:
        lr = o.lr
        root = denominator = np.sqrt(total + o.eps)
        d_all = d["sum_of_squares"] + u * (total + o.eps)
        d_denominator, d_round, d_v = _sqrt(total + o.eps, d_all, u), u * denominator, d_v + u * (total + o.eps)
    direction = g / denominator
    d_direction = _quotient(g, dg, denominator, d_denominator, u, "adagrad's root of the sum of squares")
    d_direction = _together(direction, d_direction, 1.0, 0.0, 2 * g, d_v, d_all, root, denominator, d_denominator,
                            d_round, dg, u)
    return _step(theta, dtheta, lr, direction, d_direction + u * np.abs(direction), u)  # lr's own rounding


RULES = {"sgd": _sgd, "adam": _adam, "adamw": _adam, "rmsprop": _rmsprop, "adagrad": _adagrad}


def rule_bound(optimizer: Optimizer, t: int, theta: np.ndarray, g: np.ndarray, d_theta: np.ndarray,
               d_gradient: np.ndarray, before: Slots, after: Slots, d_state: Slots, u: float) -> np.ndarray:
    """Return the bound on one parameter array after step ``t``; update ``d_state`` (its slots' bounds).

    ``g`` is the gradient after coupled weight decay, ``d_gradient`` its bound;
    ``before`` and ``after`` are the reference's slots around the step.
    Raises DenominatorUndetermined where the model promises nothing.
    """
    return RULES[optimizer.name](optimizer, t, theta, g, d_theta, d_gradient, before, after, d_state, u)
