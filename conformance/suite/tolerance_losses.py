"""The tolerance model's bounds on each loss: its value, and the output layer's delta.

Used by ``suite.tolerances.error_bounds`` once the forward pass is bounded.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, sigmoid
from backprop_conformance.reference.losses import log_softmax, normaliser, one_hot
from backprop_conformance.reference.network import Network
from backprop_conformance.suite.rounding import C_F, gamma, second_derivative

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
) -> tuple[float, np.ndarray, np.ndarray]:
    """Return (bound on J, bound on delta_L, delta_L) for the network's loss."""
    m, n_out = z.shape
    n = normaliser(network.loss, network.reduction, m, n_out)
    count = z.size if network.loss != "cross_entropy" else m
    if network.loss == "mse":
        error = a - y
        d_error = d_a + u * np.abs(y) + u * np.abs(error)
        loss = (2 * np.abs(error) * d_error).sum() + gamma(count, u) * (error**2).sum()
        name = network.activations[-1]
        slope = ACTIVATION_FUNCTIONS[name].derivative(z)
        d_slope = second_derivative(name, z) * d_z + C_F[name] * u
        delta = 2 * error * slope
        d_delta = 2 * (d_error * np.abs(slope) + np.abs(error) * d_slope) + C_LOSS * u * np.abs(delta)
    elif network.loss == "bce":
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
    else:
        log_p = log_softmax(z)
        p = np.exp(log_p)
        picked = -np.take_along_axis(log_p, y[:, None], axis=1)[:, 0]
        spread = (p * d_z).sum(axis=1)
        loss = (
            (spread + np.take_along_axis(d_z, y[:, None], axis=1)[:, 0]).sum()
            + C_LOSS * u * (picked + np.abs(z).max(axis=1) + np.log(n_out) + 1).sum()
            + gamma(count, u) * picked.sum()
        )
        delta = p - one_hot(y, n_out)
        d_delta = p * (d_z + spread[:, None]) + C_LOSS * u * (p + np.abs(delta))
    return float(loss / n), d_delta / n + u * np.abs(delta) / n, delta / n
