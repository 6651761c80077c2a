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

from backprop_conformance.reference.conventions import RELU_DERIVATIVE_AT_ZERO


class Activation(NamedTuple):
    """An activation: ``function(z, out=None)`` and ``derivative(z, a)``.

    ``function`` writes into ``out`` when given, an array of z's shape and
    dtype that is not z (speed: ``reference.backprop``'s workspace).

    ``derivative`` takes the output ``a = f(z)`` too, when the caller has it
    (the backward pass stored it in the forward pass), and uses it where that
    is exact. It never derives f' from ``a`` alone where that loses digits:
    ``1 - t^2`` and ``s (1 - s)`` cancel as units saturate (1e-8 relative at
    tanh(10), exactly 0 from |z| = 19), so they are computed from ``z``.
    """

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[..., np.ndarray]


def identity(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return z itself (nothing is computed, so nothing goes into ``out``)."""
    return z


def identity_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return 1 everywhere."""
    return np.ones_like(z)


def _exp_minus_abs(z: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Return (sign of Re z, exp(-scale |z|)) with |z| taken on the real part, so it stays analytic."""
    sign = np.where(np.real(z) >= 0, 1.0, -1.0)
    return sign, np.exp(-scale * sign * z)


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return 1 / (1 + exp(-z)), without overflow for large |z|, into ``out`` if given.

    With ``t = exp(-|z|)`` (taken on the real part), sigmoid is ``1 / (1 + t)``
    for ``z >= 0`` and ``t / (1 + t)`` below; ``t <= 1`` so nothing overflows.
    """
    sign, t = _exp_minus_abs(z)
    return np.divide(np.where(sign > 0, 1.0, t), 1.0 + t, out=out)


def sigmoid_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return sigmoid'(z) = sigmoid(z) sigmoid(-z), document 000's exp(-h) / (1 + exp(-h))^2.

    Both factors are exact to rounding for every z; ``s (1 - s)`` is not once
    s rounds towards 1. ``a``, when given, is sigmoid(z) (one exp saved).
    """
    return (sigmoid(z) if a is None else a) * sigmoid(-z)


def tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return tanh(z), into ``out`` if given."""
    return np.tanh(z, out=out)


def tanh_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return tanh'(z) = sech(z)^2 = 4 t / (1 + t)^2 with t = exp(-2|z|).

    Exact to rounding for every z, where ``1 - tanh(z)^2`` cancels.
    """
    _, t = _exp_minus_abs(z, 2.0)
    return 4.0 * t / (1.0 + t) ** 2


def relu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return max(z, 0), into ``out`` if given; for complex z, z where its real part is > 0, else 0.

    ``np.maximum`` returns z itself for z > 0 and 0.0 below, as torch.relu and
    jax.nn.relu do (NaN stays NaN, as there).
    """
    if np.iscomplexobj(z):  # maximum would order complex numbers lexicographically
        return np.where(np.real(z) > 0, z, 0.0)
    return np.maximum(z, 0.0, out=out)


def relu_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return relu'(z) as a boolean mask, True where z > 0; relu'(0) = 0 as in torch and JAX.

    A product with the mask is the product with 1.0 and 0.0, bit for bit;
    a bool array is an eighth of a float one (speed).
    """
    assert RELU_DERIVATIVE_AT_ZERO == 0.0  # the mask encodes this convention
    return np.real(z) > 0


ACTIVATION_FUNCTIONS: dict[str, Activation] = {
    "identity": Activation("identity", identity, identity_derivative),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
}

#: Activations that are analytic everywhere: the complex step is exact on them.
SMOOTH_ACTIVATIONS: frozenset[str] = frozenset({"identity", "sigmoid", "tanh"})
