"""The rounding of single operations, the bricks of the tolerance model (``suite.tolerances``).

``u`` is a dtype's unit roundoff; a length-``n`` sum is off by at most
``gamma_n`` relative to the sum of the magnitudes (Higham, section 3.1); an
activation adds ``C_F`` ulps of its own and, computed from a rounded input,
moves by ``|f''| dz``.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.reference.activations import sigmoid

#: Ulps an activation's evaluation may add (exp, tanh, and the division in sigmoid).
C_F = {"identity": 0.0, "relu": 0.0, "sigmoid": 4.0, "tanh": 4.0}
#: Bound on |f''(z)| for each activation: sigmoid 1/(6 sqrt 3), tanh 4/(3 sqrt 3).
SECOND_DERIVATIVE_BOUND = {"identity": 0.0, "relu": 0.0, "sigmoid": 0.0963, "tanh": 0.770}


def unit_roundoff(dtype: str | np.dtype) -> float:
    """Return u = eps / 2 of ``dtype`` (float32: 5.96e-8, float64: 1.11e-16)."""
    return float(np.finfo(np.dtype(dtype)).eps) / 2.0


def gamma(n: int, u: float) -> float:
    """Return gamma_n = n u / (1 - n u), the error factor of an n-term sum."""
    return n * u / (1.0 - n * u)


def second_derivative(name: str, z: np.ndarray) -> np.ndarray:
    """Return |f''(z)| for the activation, exactly for sigmoid and tanh."""
    if name == "sigmoid":
        s = sigmoid(z)
        return np.abs(s * (1 - s) * (1 - 2 * s))
    if name == "tanh":
        t = np.tanh(z)
        return np.abs(2 * t * (1 - t * t))
    return np.zeros_like(z)
