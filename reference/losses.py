"""Losses: the value ``J`` and the output layer's error ``dJ/dz_L``, side by side.

Each function takes the output layer's pre-activation ``z`` (and activation
``a = f(z)``) of a batch, ``(m, n_L)``, and returns the *unnormalised* sum
over the batch; ``normaliser`` gives the ``N`` that ``reduction="mean"``
divides by. Formulas and framework counterparts: ``reference.conventions``.

Like ``reference.activations``, everything here stays analytic for complex
input, for the complex-step oracle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backprop_conformance.reference.activations import Activation, sigmoid
from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.specs import SpecTable, base


def softplus(z: np.ndarray) -> np.ndarray:
    """Return log(1 + exp(z)) without overflow: max(z, 0) + log1p(exp(-|z|))."""
    positive = np.real(z) > 0
    return np.where(positive, z, 0.0) + np.log1p(np.exp(np.where(positive, -z, z)))


def log_softmax(z: np.ndarray) -> np.ndarray:
    """Return z - logsumexp(z) along the last axis, shifted by the real maximum."""
    shifted = z - np.max(np.real(z), axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Return the (m, n_classes) float64 indicator matrix of integer labels."""
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)


def mse(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return sum (a - y)^2."""
    return np.sum((a - y) ** 2)


def mse_delta(z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
    """Return dJ/dz = dJ/da * f'(z) = 2 (a - y) f'(z)."""
    return 2.0 * (a - y) * activation.derivative(z, a)


def bce(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return -sum y log a + (1 - y) log(1 - a), with a = sigmoid(z).

    Evaluated as sum (1 - y) softplus(z) + y softplus(-z), the same number
    without log(0) (log sigmoid(z) = -softplus(-z), log(1 - sigmoid(z)) =
    -softplus(z)) and, unlike softplus(z) - y z, without cancellation when a
    confident output is right (y = 1, z >> 0).
    """
    return np.sum((1.0 - y) * softplus(z) + y * softplus(-z))


def bce_delta(z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
    """Return dJ/dz = a - y: dJ/da = (a - y) / (a (1 - a)) times da/dz = a (1 - a).

    The product is taken in closed form; the factors (document 000's Steps 1
    and 2) lose all precision once a rounds to 0 or 1, the product does not.
    It is written (1 - y) sigmoid(z) - y sigmoid(-z), using 1 - a = sigmoid(-z),
    so that a right, confident output (y = 1, z >> 0) keeps its digits.
    """
    return (1.0 - y) * a - y * sigmoid(-z)


def bce_probability_gradient(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return dJ/da = -(y / a - (1 - y) / (1 - a)) at a = sigmoid(z), document 000's
    Step 1 with its minus sign restored.

    Written ((1 - y) a - y (1 - a)) / (a (1 - a)) with 1 - a = sigmoid(-z), so it
    stays finite where a rounds to 1 (until sigmoid(-z) underflows, |z| > 745).
    """
    a, complement = sigmoid(z), sigmoid(-z)
    return ((1.0 - y) * a - y * complement) / (a * complement)


def cross_entropy(z: np.ndarray, a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Return -sum_s log softmax(z_s)[c_s] over the batch."""
    return -np.sum(np.take_along_axis(log_softmax(z), labels[:, None], axis=1))


def cross_entropy_delta(
    z: np.ndarray, a: np.ndarray, labels: np.ndarray, activation: Activation
) -> np.ndarray:
    """Return dJ/dz = softmax(z) - one_hot(c)."""
    return np.exp(log_softmax(z)) - one_hot(labels, z.shape[1])


def smoothed_targets(labels: np.ndarray, n_classes: int, smoothing: float) -> np.ndarray:
    """Return q = (1 - e) one_hot(c) + e / K: torch's label_smoothing, optax.smooth_labels."""
    return (1.0 - smoothing) * one_hot(labels, n_classes) + smoothing / n_classes


def _smoothed_cross_entropy(smoothing: float) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def value(z: np.ndarray, a: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Return -sum_s sum_k q_sk log softmax(z_s)_k."""
        return -np.sum(smoothed_targets(labels, z.shape[1], smoothing) * log_softmax(z))

    def delta(z: np.ndarray, a: np.ndarray, labels: np.ndarray, activation: Activation) -> np.ndarray:
        """Return dJ/dz = softmax(z) - q."""
        return np.exp(log_softmax(z)) - smoothed_targets(labels, z.shape[1], smoothing)

    return value, delta


def _huber(delta_: float) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def value(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return sum h(a - y): d^2 / 2 where |d| <= delta, else delta (|d| - delta / 2)."""
        d = a - y
        inside = np.abs(np.real(d)) <= delta_
        sign = np.where(np.real(d) >= 0, 1.0, -1.0)  # |d| on the real part, analytic for the complex step
        return np.sum(np.where(inside, 0.5 * d * d, delta_ * (sign * d - 0.5 * delta_)))

    def delta(z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        """Return dJ/dz = clip(a - y, -delta, delta) f'(z)."""
        d = a - y
        inside = np.abs(np.real(d)) <= delta_
        return np.where(inside, d, delta_ * np.where(np.real(d) >= 0, 1.0, -1.0)) * activation.derivative(z, a)

    return value, delta


def bce_with_logits(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return bce on the logits z of an identity output layer (torch's BCEWithLogitsLoss)."""
    return bce(z, sigmoid(z), y)


def bce_with_logits_delta(z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
    """Return dJ/dz = sigmoid(z) - y, written so that a right, confident output keeps its digits."""
    return bce_delta(z, sigmoid(z), y, activation)


_PARAMETERISED = {
    "huber": lambda delta: _huber(delta),
    "cross_entropy": lambda label_smoothing: _smoothed_cross_entropy(label_smoothing),
}


LOSS_FUNCTIONS = SpecTable({
    "mse": (mse, mse_delta),
    "bce": (bce, bce_delta),
    "cross_entropy": (cross_entropy, cross_entropy_delta),
    "huber": _huber(PARAMETERS["huber"]["delta"]),
    "bce_with_logits": (bce_with_logits, bce_with_logits_delta),
}, _PARAMETERISED, PARAMETERS, "loss")


def normaliser(loss: str, reduction: str, n_samples: int, n_outputs: int) -> int:
    """Return N, what the summed loss is divided by: 1 for ``sum``; for ``mean``
    the number of elements (mse, bce, huber, bce_with_logits, as torch) or of samples (cross_entropy)."""
    if reduction == "sum":
        return 1
    return n_samples if base(loss) == "cross_entropy" else n_samples * n_outputs
