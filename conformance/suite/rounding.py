"""The rounding of single operations, the bricks of the tolerance model (``suite.tolerances``).

``u`` is a dtype's unit roundoff; a length-``n`` sum is off by at most
``gamma_n`` relative to the sum of the magnitudes (Higham, section 3.1); an
activation adds ``C_F`` ulps of its own and, computed from a rounded input,
moves by ``|f''| dz``.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, sigmoid
from backprop_conformance.reference.specs import base

#: Ulps an activation's evaluation may add, by name: exp, tanh, erf, log1p and expm1 are each within a few
#: ulps in the frameworks' libraries (and the division in sigmoid one more); a product or a sum one each.
C_F = {
    "identity": 0.0, "relu": 0.0, "leaky_relu": 1.0, "sigmoid": 4.0, "tanh": 4.0,
    "gelu": 6.0, "gelu_tanh": 8.0, "silu": 6.0, "softplus": 4.0, "elu": 4.0,
}
#: Bound on |f''(z)| for each activation: sigmoid 1/(6 sqrt 3), tanh 4/(3 sqrt 3), gelu 2 phi(0), gelu_tanh
#: about as much, silu 1/2, softplus 1/4, elu alpha (below 0; ``second_derivative`` uses the value there).
SECOND_DERIVATIVE_BOUND = {
    "identity": 0.0, "relu": 0.0, "leaky_relu": 0.0, "sigmoid": 0.0963, "tanh": 0.770,
    "gelu": 0.798, "gelu_tanh": 0.81, "silu": 0.5, "softplus": 0.25,
}


def unit_roundoff(dtype: str | np.dtype) -> float:
    """Return u = eps / 2 of ``dtype`` (float32: 5.96e-8, float64: 1.11e-16)."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2.0


def gamma(n: int, u: float) -> float:
    """Return gamma_n = n u / (1 - n u), the error factor of an n-term sum."""
    return n * u / (1.0 - n * u)


def second_derivative(spec: str, z: np.ndarray) -> np.ndarray:
    """Return |f''(z)| for the activation ``spec``: exact for sigmoid and tanh, a central difference of the
    reference's exact f' for the others (accurate to about 1e-8, ample for a bound), 0 for piecewise linear ones.
    """
    name = base(spec)
    if name == "sigmoid":
        s = sigmoid(z)
        return np.abs(s * (1 - s) * (1 - 2 * s))
    if name == "tanh":
        t = np.tanh(z)
        return np.abs(2 * t * (1 - t * t))
    if name in ("identity", "relu", "leaky_relu"):
        return np.zeros_like(z)
    derivative, step = ACTIVATION_FUNCTIONS[spec].derivative, 1e-4
    return np.abs(derivative(z + step) - derivative(z - step)) / (2 * step)


def evaluation_scale(spec: str, z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Return what an activation's rounding is relative to: |a|, and for gelu and gelu_tanh also |z| / 2.

    torch and JAX compute gelu as z (1 + erf(z / sqrt 2)) / 2 (and gelu_tanh
    with 1 + tanh): for negative z the sum 1 + erf cancels, so its rounding
    is absolute, u, and reaches the output as u |z| / 2, far above u |a|.
    """
    if base(spec) in ("gelu", "gelu_tanh"):
        return np.abs(a) + 0.5 * np.abs(z)
    return np.abs(a)


def derivative_scale(spec: str, z: np.ndarray) -> np.ndarray | float:
    """Return what an activation derivative's rounding is relative to: 1, and more where it cancels.

    Autodiff of gelu_tanh's z (1 + t) / 2, t = tanh(k (z + c z^3)), gives
    (1 + t) / 2 + z (1 - t^2) k (1 + 3 c z^2) / 2: for large |z| both 1 + t
    and 1 - t^2 cancel, and the second term's rounding is absolute, u times
    |z| k (1 + 3 c z^2). silu's s (1 + z (1 - s)) loses u |z| in 1 - s.
    """
    name = base(spec)
    if name == "gelu_tanh":
        return 1.0 + np.abs(z) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * z * z)
    if name == "silu":
        return 1.0 + np.abs(z)
    return 1.0


def rounding_ulps(spec: str) -> float:
    """Return ``C_F`` of an activation spec (its name's)."""
    return C_F[base(spec)]
