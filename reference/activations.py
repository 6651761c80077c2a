"""Activations ``a = f(z)`` and their derivatives ``f'(z)``, side by side.

Every function is written so that it also accepts complex ``z`` and stays
analytic there: the complex-step oracle (``reference.oracles``) pushes
``z + i h`` through the same code. Branches are chosen on ``z.real``, never
with ``abs``, which is not analytic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from reference.conventions import RELU_DERIVATIVE_AT_ZERO


class Activation(NamedTuple):
    """An activation: ``function(z)`` and ``derivative(z)``."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]


def identity(z: np.ndarray) -> np.ndarray:
    """Return z."""
    return z


def identity_derivative(z: np.ndarray) -> np.ndarray:
    """Return 1 everywhere."""
    return np.ones_like(z)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Return 1 / (1 + exp(-z)), without overflow for large |z|.

    With ``t = exp(-|z|)`` (taken on the real part), sigmoid is ``1 / (1 + t)``
    for ``z >= 0`` and ``t / (1 + t)`` below; ``t <= 1`` so nothing overflows.
    """
    sign = np.where(np.real(z) >= 0, 1.0, -1.0)
    t = np.exp(-sign * z)
    return np.where(sign > 0, 1.0, t) / (1.0 + t)


def sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    """Return sigmoid'(z) = s (1 - s), the factor document 000 writes as
    exp(-h) / (1 + exp(-h))^2."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z: np.ndarray) -> np.ndarray:
    """Return tanh(z)."""
    return np.tanh(z)


def tanh_derivative(z: np.ndarray) -> np.ndarray:
    """Return tanh'(z) = 1 - tanh(z)^2."""
    return 1.0 - np.tanh(z) ** 2


def relu(z: np.ndarray) -> np.ndarray:
    """Return max(z, 0), branching on the real part."""
    return np.where(np.real(z) > 0, z, 0.0)


def relu_derivative(z: np.ndarray) -> np.ndarray:
    """Return 1 where z > 0, else 0; relu'(0) = 0 as in torch and JAX."""
    return np.where(np.real(z) > 0, 1.0, RELU_DERIVATIVE_AT_ZERO)


ACTIVATION_FUNCTIONS: dict[str, Activation] = {
    "identity": Activation("identity", identity, identity_derivative),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
}

#: Activations that are analytic everywhere: the complex step is exact on them.
SMOOTH_ACTIVATIONS: frozenset[str] = frozenset({"identity", "sigmoid", "tanh"})
