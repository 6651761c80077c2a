"""The tolerance model's bounds on each loss: its value, and the output layer's delta.

Used by ``suite.tolerances.error_bounds`` once the forward pass is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, Activation, sigmoid
from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.losses import log_softmax, normaliser, smoothed_targets
from backprop_conformance.reference.network import Network
from backprop_conformance.reference.specs import parse
from backprop_conformance.suite.rounding import derivative_scale, gamma, rounding_ulps, second_derivative

#: Ulps for the loss's own transcendental functions and reductions.
C_LOSS = 8.0


def loss_bounds(
    network: Network,
    z: np.ndarray,
    a: np.ndarray,
    y: np.ndarray,
    d_a: np.ndarray,
    d_z: np.ndarray,
    u: float,
    activations: Mapping[str, Activation] = ACTIVATION_FUNCTIONS,
) -> tuple[float, np.ndarray, np.ndarray]:
    """Return (bound on J, bound on delta_L, delta_L) for the network's loss (``activations``: whose
    output derivative delta_L multiplies by, the reference's unless a variant's bounds are wanted)."""
    m, n_out = z.shape
    n = normaliser(network.loss, network.reduction, m, n_out)
    loss_name, parameters = parse(network.loss, PARAMETERS, "loss")
    count = z.size if loss_name != "cross_entropy" else m
    if loss_name in ("mse", "huber"):
        error = a - y
        d_error = d_a + u * np.abs(y) + u * np.abs(error)
        name = network.activations[-1]
        slope = activations[name].derivative(z)
        d_slope = second_derivative(name, z) * d_z + rounding_ulps(name) * u * derivative_scale(name, z)
        if loss_name == "mse":  # d J = 2 |e| de; dJ/da = 2 e
            loss = (2 * np.abs(error) * d_error).sum() + gamma(count, u) * (error**2).sum()
            gradient, d_gradient = 2 * error, 2 * d_error
        else:  # huber: |h'(e)| = min(|e|, delta) <= |e|, and h'(e) = clip(e) moves by at most de
            delta_ = parameters["delta"]
            gradient = np.clip(error, -delta_, delta_)
            loss = (np.abs(gradient) * d_error).sum() + gamma(count, u) * (error**2 / 2 + delta_ * np.abs(error)).sum()
            d_gradient = d_error
        delta = gradient * slope
        d_delta = d_gradient * np.abs(slope) + np.abs(gradient) * d_slope + C_LOSS * u * np.abs(delta)
    elif loss_name in ("bce", "bce_with_logits"):
        # Clipped so the bound stays finite (and quiet) where the case is rejected anyway.
        p = np.clip(sigmoid(z), np.finfo(np.float64).tiny, 1 - np.finfo(np.float64).epsneg)
        terms = np.abs(y * np.log(p)) + np.abs((1 - y) * np.log1p(-p))
        # d log p = (1 - p) dz and d log(1 - p) = p dz; taking logs of a rounded
        # p (torch) costs u / p and u / (1 - p), the conditioning of BCELoss.
        loss = (
            (np.abs(p - y) * d_z).sum()
            + C_LOSS * u * (terms + y / p + (1 - y) / (1 - p)).sum()
            + gamma(count, u) * terms.sum()
        )
        delta = p - y
        d_delta = p * (1 - p) * d_z + C_LOSS * u * (p + np.abs(y) + np.abs(delta))
    else:  # cross_entropy against q (one_hot, smoothed when label_smoothing > 0)
        log_p = log_softmax(z)
        p = np.exp(log_p)
        q = smoothed_targets(y, n_out, parameters["label_smoothing"])
        picked = -(q * log_p).sum(axis=1)
        spread = (p * d_z).sum(axis=1)
        loss = (
            (spread + (q * d_z).sum(axis=1)).sum()
            + C_LOSS * u * (picked + np.abs(z).max(axis=1) + np.log(n_out) + 1).sum()
            + gamma(count * (n_out if parameters["label_smoothing"] else 1), u) * picked.sum()
        )
        delta = p - q
        d_delta = p * (d_z + spread[:, None]) + C_LOSS * u * (p + np.abs(delta))
    return float(loss / n), d_delta / n + u * np.abs(delta) / n, delta / n
