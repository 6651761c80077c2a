"""The tolerance model: how far an exact-math-conforming implementation may stray.

An adapter computing in a dtype with unit roundoff ``u`` (float32: 2^-24,
float64: 2^-53) cannot match exact math; the question is how far it may be
off. Rather than one magic number per test, the suite derives an
*element-wise* bound for every quantity from a first-order running error
analysis of the computation itself (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., sections 3.1-3.5):

* Every input is rounded to the adapter's dtype: ``|dx| <= u|x|``,
  ``|dW| <= u|W|`` (plus, during training, the error carried in the params).
* A dot product of length ``n`` is off by at most ``gamma_n |w|.|a|`` with
  ``gamma_n = n u / (1 - n u)``, in any summation order; so
  ``dz_l <= da_{l-1} |W_l|^T + (u + gamma_{n+1}) (|a_{l-1}| |W_l|^T + |b_l|)``.
* An activation adds its own rounding (``C_F`` ulps for sigmoid and tanh,
  none for identity and relu) to the propagated ``|f'(z)| dz``.
* Derivatives ``f'(z)`` are computed by frameworks from the rounded
  activation (``s(1 - s)``, ``1 - t^2``), so they carry an *absolute* error
  of ``C_F u`` besides ``|f''(z)| dz``. This is what covers saturated
  sigmoid/tanh units: their derivative may round to 0 where exact math
  gives 1e-9, and the model says so.
* The backward pass is bounded the same way, with absolute values of the
  deltas, weights and activations.
* Underflow: with gradual underflow every operation may also be off by an
  absolute ``eta`` (the dtype's smallest normal number, float32: 1.2e-38),
  added at every stage and propagated like any other error.

The result is a bound ``delta`` per entry of every output, loss, gradient
and update. The suite allows ``SAFETY * delta``. The bound is worst-case
(errors aligned, first order), so a correct implementation sits well inside
it, typically 10-1000x; ``SAFETY`` covers what the model leaves out
(transcendental functions off by a few ulps more, second-order terms).
Because the bound scales with the *magnitudes that enter each entry*, not
with the entry itself, a gradient entry that is small through cancellation
is judged against the size of what cancelled, never by a meaningless
element-wise relative error.

The reference's own float64 rounding is folded in by using
``u = u_adapter + u_float64``.

Trajectories
    During training the params themselves carry error. The bound of step
    ``t``'s update, ``SAFETY * |d theta_t|`` entry by entry, becomes the
    parameter uncertainty of step ``t + 1``'s running error analysis, so the
    bound grows with the steps as the first-order propagation says.

Rules for cases outside the model (documented, applied before comparing):
* Kinks: a relu pre-activation ``z`` with ``0 < |z| <= SAFETY * dz`` may
  land on either side of the kink in the adapter's dtype, flipping relu'
  between 0 and 1. Such a case is *ambiguous* and is not compared (the
  Hypothesis strategies reject it). ``z`` whose every term is exactly 0
  (a dead unit: zero weights and bias, or zero inputs) is 0 in any dtype and
  not ambiguous: there relu'(0) = 0 decides, and the suite checks it.
* Saturated bce: ``torch.nn.BCELoss`` works on probabilities; when
  ``min(p, 1 - p) < sqrt(u)`` (float32: |z_L| > 8.3) it has lost more than
  half its digits, and whether ``p`` rounds to 1 is a matter of the last
  bit. Such outputs are outside the suite's promise and are rejected the
  same way, unless ``p`` is beyond doubt exactly 0 or 1 in the dtype
  (``1 - p`` below a 32nd of its epsilon, float32: z > 19.4, float64:
  z > 39.5): there exact math is compared, and torch's clamp at -100 and
  its gradient floor make the known divergence "torch BCELoss clamp"
  (``suite.variants``), which the torch adapter declares.

What the suite does not promise: agreement on saturated bce outputs,
ambiguous kinks, overflow (the strategies keep values far from it), or
last-bit identity; and a bug smaller than the bound is not caught (in
float64 the bound is about ``n 1e-16`` relative to the magnitudes involved,
so a relative error of 1e-6 is caught wherever the entry is not itself the
result of cancellation by more than eight orders of magnitude).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_conformance.reference.activations import sigmoid
from backprop_conformance.reference.backprop import REFERENCE_RULES, Rules, _forward
from backprop_conformance.reference.conventions import PARAMETERS, SOFTPLUS_TORCH_THRESHOLD
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.specs import base, parse
from backprop_conformance.suite.rounding import (
    derivative_scale,
    evaluation_scale,
    gamma,
    rounding_ulps,
    second_derivative,
    unit_roundoff,
)
from backprop_conformance.suite.tolerance_losses import loss_bounds

__all__ = ["SAFETY", "ErrorBounds", "ambiguity", "error_bounds", "gamma", "unit_roundoff", "update_bounds"]

#: Multiplier on the first-order bound: room for what the model leaves out.
SAFETY = 4.0


@dataclass(frozen=True)
class ErrorBounds:
    """First-order error bounds (before SAFETY) for one batch through one network.

    ``z`` and ``z_bounds``: the pre-activations and their bounds, per layer;
    ``output``: bound on the forward output a_L; ``loss``: on J;
    ``grads``: on dJ/dW and dJ/db, in the params' structure.
    """

    u: float
    eta: float
    z: list[np.ndarray]
    z_bounds: list[np.ndarray]
    z_magnitudes: list[np.ndarray]
    output: np.ndarray
    loss: float
    grads: Params


def error_bounds(
    network: Network,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    dtype: str,
    param_error: Params | None = None,
    rules: Rules = REFERENCE_RULES,
) -> ErrorBounds:
    """Return the running-error bounds of forward, loss and gradients in ``dtype``.

    ``param_error``, in the params' structure, is the absolute uncertainty
    each parameter already carries (from earlier training steps), on top of
    its rounding. ``rules``: the activations whose values and derivatives
    the pass multiplies by, the reference's unless a variant's bounds are
    wanted (``suite.diagnosis``).
    """
    carried = param_error or [(0.0, None if bias is None else 0.0) for _, bias in params]
    u = unit_roundoff(dtype) + unit_roundoff(np.float64)
    eta = float(np.finfo(np.dtype(dtype)).tiny)  # absolute error of an operation that underflows
    zs, activations = _forward(network, params, x, rules=rules)
    m = x.shape[0]

    # Forward: d_a[l] bounds the error of activations[l].
    d_a = [u * np.abs(x) + eta]
    z_bounds, z_magnitudes = [], []
    for index, ((weight, bias), name) in enumerate(zip(params, network.activations)):
        a_abs = np.abs(activations[index])
        w_abs = np.abs(weight)
        w_err = u * w_abs + carried[index][0]
        magnitude = a_abs @ w_abs.T + (np.abs(bias) if bias is not None else 0.0)
        d_z = d_a[-1] @ w_abs.T + a_abs @ w_err.T + gamma(weight.shape[1] + 1, u) * magnitude
        if bias is not None:
            d_z = d_z + u * np.abs(bias) + carried[index][1]
        d_z = d_z + eta
        z_bounds.append(d_z)
        z_magnitudes.append(magnitude)
        slope = np.abs(rules.activations[name].derivative(zs[index]))
        scale = evaluation_scale(name, zs[index], activations[index + 1])
        d_a.append(slope * d_z + rounding_ulps(name) * u * scale + eta)

    loss_bound, d_delta, delta = loss_bounds(network, zs[-1], activations[-1], y, d_a[-1], z_bounds[-1], u,
                                             rules.activations)
    d_delta = d_delta + eta

    # Backward: bounds on the deltas and the gradients, layer by layer.
    grads: Params = [None] * network.depth  # type: ignore[list-item]
    for index in reversed(range(network.depth)):
        weight, bias = params[index]
        a_abs, delta_abs = np.abs(activations[index]), np.abs(delta)
        d_weight = d_delta.T @ a_abs + delta_abs.T @ d_a[index] + gamma(m, u) * (delta_abs.T @ a_abs) + eta
        d_bias = None if bias is None else d_delta.sum(axis=0) + gamma(m, u) * delta_abs.sum(axis=0) + eta
        grads[index] = (d_weight, d_bias)
        if index == 0:
            break
        w_abs = np.abs(weight)
        name = network.activations[index - 1]
        upstream = delta @ weight
        d_upstream = d_delta @ w_abs + delta_abs @ (u * w_abs + carried[index][0]) + gamma(
            weight.shape[0], u
        ) * (delta_abs @ w_abs)
        slope = rules.activations[name].derivative(zs[index - 1])
        d_slope = (second_derivative(name, zs[index - 1]) * z_bounds[index - 1]
                   + rounding_ulps(name) * u * derivative_scale(name, zs[index - 1]))
        delta = upstream * slope
        d_delta = d_upstream * np.abs(slope) + np.abs(upstream) * d_slope + u * np.abs(delta) + eta
    return ErrorBounds(
        u=u,
        eta=eta,
        z=zs,
        z_bounds=z_bounds,
        z_magnitudes=z_magnitudes,
        output=d_a[-1],
        loss=loss_bound + eta,
        grads=grads,
    )


def update_bounds(
    params: Params, grads: Params, bounds: ErrorBounds, learning_rate: float, param_error: Params | None = None
) -> Params:
    """Return bounds on theta - learning_rate * grad, element-wise, before SAFETY.

    ``param_error`` is what each parameter already carried (see error_bounds).
    """
    u = bounds.u
    carried = param_error or [(0.0, None if bias is None else 0.0) for _, bias in params]
    result = []
    for (weight, bias), (d_weight, d_bias), (b_weight, b_bias), (c_weight, c_bias) in zip(
        params, grads, bounds.grads, carried
    ):
        pair = []
        for theta, grad, grad_bound, carry in (
            (weight, d_weight, b_weight, c_weight),
            (bias, d_bias, b_bias, c_bias),
        ):
            if theta is None:
                pair.append(None)
                continue
            new = theta - learning_rate * grad
            pair.append(
                u * np.abs(theta) + carry + learning_rate * grad_bound
                + 2 * u * learning_rate * np.abs(grad) + u * np.abs(new) + bounds.eta
            )
        result.append(tuple(pair))
    return result


def kink_of(spec: str) -> float | None:
    """Return where an activation's derivative jumps, or None: relu and leaky_relu at 0, elu at 0 unless
    alpha = 1, softplus at torch's threshold 20 (exact math has no kink there; torch's Softplus switches)."""
    name, values = parse(spec, PARAMETERS, "activation")
    if name in ("relu", "leaky_relu") or (name == "elu" and values["alpha"] != 1.0):
        return 0.0
    if name == "softplus":
        return SOFTPLUS_TORCH_THRESHOLD
    return None


def ambiguity(network: Network, bounds: ErrorBounds, dtype: str) -> str | None:
    """Return why this case is outside the model (ambiguous kink, saturated bce), or None."""
    for index, name in enumerate(network.activations):
        kink = kink_of(name)
        if kink is None:
            continue
        z, d_z = bounds.z[index], bounds.z_bounds[index]
        # Every term of z exactly 0 (a dead unit): z is 0 in any dtype, not ambiguous.
        close = (np.abs(z - kink) <= SAFETY * d_z) & ((bounds.z_magnitudes[index] > 0) | (kink != 0))
        if close.any():
            position = tuple(int(i) for i in np.argwhere(close)[0])
            return (
                f"{base(name)} kink: z{index + 1}{list(position)} = {z[position]:.3e} is within its "
                f"rounding bound {SAFETY * d_z[position]:.1e} of {kink:g} in {dtype}"
            )
    if network.loss_name == "bce":
        p = sigmoid(bounds.z[-1])
        floor = np.sqrt(unit_roundoff(dtype))
        info = np.finfo(np.dtype(dtype))
        # Beyond doubt 1 (or 0) in the dtype, in any faithful computation: compared, not ambiguous.
        exact = (sigmoid(-bounds.z[-1]) < float(info.eps) / 32) | (p < float(info.smallest_subnormal) / 4)
        saturated = (np.minimum(p, 1 - p) < floor) & ~exact
        if saturated.any():
            position = tuple(int(i) for i in np.argwhere(saturated)[0])
            return (
                f"saturated bce: sigmoid(z{network.depth}{list(position)}) = {p[position]!r} is within "
                f"sqrt(u) = {floor:.1e} of 0 or 1 in {dtype}"
            )
    return None
