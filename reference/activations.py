"""Activations ``a = f(z)`` and their derivatives ``f'(z)``, side by side.

Every function is written so that it also accepts complex ``z`` and stays
analytic there: the complex-step oracle (``reference.oracles``) pushes
``z + i h`` through the same code. Branches are chosen on ``z.real``, never
with ``abs``, which is not analytic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from backprop_conformance.reference.conventions import PARAMETERS, RELU_DERIVATIVE_AT_ZERO
from backprop_conformance.reference.specs import SpecTable


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


_SQRT_HALF = math.sqrt(0.5)
_INVERSE_SQRT_TWO_PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_GELU_TANH_SCALE, _GELU_TANH_CUBIC = math.sqrt(2.0 / math.pi), 0.044715
_real_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """Return erf(x) entry by entry (``math.erf``, within an ulp), in x's dtype.

    NumPy has no erf. For complex x = u + iv, erf(u) + iv erf'(u) with
    erf'(u) = (2/sqrt pi) exp(-u^2): the first-order term, which is all the
    complex-step oracle (v = 1e-30) reads, exactly; nothing else passes
    complex numbers here.
    """
    x = np.asarray(x)
    if np.iscomplexobj(x):
        u, v = np.real(x), np.imag(x)
        return erf(u) + 1j * v * _TWO_OVER_SQRT_PI * np.exp(-u * u)
    return np.asarray(_real_erf(x), dtype=x.dtype if x.dtype.kind == "f" else np.float64)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(z * _SQRT_HALF))


def gelu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return z Phi(z), Phi the standard normal CDF (the exact gelu, torch's nn.GELU())."""
    return np.multiply(z, _normal_cdf(z), out=out)


def gelu_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return gelu'(z) = Phi(z) + z phi(z), phi(z) = exp(-z^2 / 2) / sqrt(2 pi)."""
    return _normal_cdf(z) + z * _INVERSE_SQRT_TWO_PI * np.exp(-0.5 * z * z)


def _gelu_tanh_inner(z: np.ndarray) -> np.ndarray:
    return _GELU_TANH_SCALE * (z + _GELU_TANH_CUBIC * z**3)


def gelu_tanh(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2, the tanh approximation (jax.nn.gelu's default)."""
    return np.multiply(0.5 * z, 1.0 + np.tanh(_gelu_tanh_inner(z)), out=out)


def gelu_tanh_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return (1 + t) / 2 + (z / 2) sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 z^2), u the inner, t = tanh(u)."""
    inner = _gelu_tanh_inner(z)
    slope = _GELU_TANH_SCALE * (1.0 + 3.0 * _GELU_TANH_CUBIC * z * z)
    return 0.5 * (1.0 + np.tanh(inner)) + 0.5 * z * tanh_derivative(inner) * slope


def silu(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return z sigmoid(z) (torch's nn.SiLU, jax.nn.silu)."""
    return np.multiply(z, sigmoid(z), out=out)


def silu_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return silu'(z) = sigmoid(z) + z sigmoid(z) sigmoid(-z)."""
    s = sigmoid(z)
    return s + z * s * sigmoid(-z)


def softplus(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Return log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|)), exact for every z (no threshold)."""
    sign, t = _exp_minus_abs(z)
    return np.add(np.where(sign > 0, z, 0.0), np.log1p(t), out=out)


def softplus_derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
    """Return softplus'(z) = sigmoid(z)."""
    return sigmoid(z)


def _leaky_relu(slope: float) -> Activation:
    def function(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return z for z > 0, else slope z."""
        return np.where(np.real(z) > 0, z, slope * z)

    def derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
        """Return 1 for z > 0, else slope: leaky_relu'(0) = slope, as torch (JAX gives 1)."""
        return np.where(np.real(z) > 0, 1.0, slope)

    return Activation("leaky_relu", function, derivative)


def _elu(alpha: float) -> Activation:
    def function(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return z for z > 0, else alpha (exp(z) - 1), with expm1 (no cancellation near 0)."""
        positive = np.real(z) > 0
        return np.where(positive, z, alpha * np.expm1(np.where(positive, 0.0, z)))

    def derivative(z: np.ndarray, a: np.ndarray | None = None) -> np.ndarray:
        """Return 1 for z > 0, else alpha exp(z): elu'(0) = alpha, as torch and JAX."""
        positive = np.real(z) > 0
        return np.where(positive, 1.0, alpha * np.exp(np.where(positive, 0.0, z)))

    return Activation("elu", function, derivative)


#: The activations with parameters: name -> (parameters -> Activation).
_PARAMETERISED: dict[str, Callable[..., Activation]] = {
    "leaky_relu": lambda negative_slope: _leaky_relu(negative_slope),
    "elu": lambda alpha: _elu(alpha),
}


ACTIVATION_FUNCTIONS = SpecTable({
    "identity": Activation("identity", identity, identity_derivative),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative),
    "tanh": Activation("tanh", tanh, tanh_derivative),
    "relu": Activation("relu", relu, relu_derivative),
    "gelu": Activation("gelu", gelu, gelu_derivative),
    "gelu_tanh": Activation("gelu_tanh", gelu_tanh, gelu_tanh_derivative),
    "silu": Activation("silu", silu, silu_derivative),
    "softplus": Activation("softplus", softplus, softplus_derivative),
    "leaky_relu": _leaky_relu(PARAMETERS["leaky_relu"]["negative_slope"]),
    "elu": _elu(PARAMETERS["elu"]["alpha"]),
}, _PARAMETERISED, PARAMETERS, "activation")

#: Activations that are analytic everywhere: the complex step is exact on them.
SMOOTH_ACTIVATIONS: frozenset[str] = frozenset({"identity", "sigmoid", "tanh", "gelu", "gelu_tanh", "silu", "softplus"})
