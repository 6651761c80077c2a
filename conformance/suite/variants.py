"""The catalogue of named deviations from exact math: each one entry of data.

A ``Variant`` is the reference computation with one thing changed: a piece of
the pass swapped (``rules``: an activation's derivative, a loss, the
normaliser; ``reference.backprop.Rules``), the gradients transformed, the
learning rate or the schedule changed, the gradients accumulated, or the
whole pass computed in float32. When a comparison fails, ``suite.diagnosis``
computes the variants that apply and says which one the adapter's numbers
match. A *convention* is a variant a framework follows by design (an
adapter lists it in ``conventions``): matching it is "known divergence:
<name>", not a failure.

Adding a variant is one entry in ``CATALOGUE`` and its test in
``tests/test_variants.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, Activation, sigmoid, tanh
from backprop_conformance.reference.backprop import REFERENCE_RULES, Rules, _forward
from backprop_conformance.reference.losses import LOSS_FUNCTIONS, log_softmax, one_hot
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.suite.case import Case

#: float32's 1e-12, the floor BCELoss divides its gradient by (a float32 constant even in float64).
TORCH_BCE_GRADIENT_FLOOR = float(np.float32(1e-12))
LABEL_SMOOTHING = 0.1
#: The eps of the log-loss variants: float32's (scikit-learn's clip in float32; Keras's epsilon is 1e-7).
#: float64's own eps is no use here: a deviation of eps / p hides inside the u / p the model allows for logs.
LOG_LOSS_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class Variant:
    """One named deviation: what it changes, where it can show, and how the reference computes it."""

    name: str
    description: str
    #: The quantities it can change: of "loss", "gradient", "update", "trajectory".
    changes: frozenset[str]
    #: (case, adapter dtype) -> whether it can change this case's numbers at all.
    applies: Callable[[Case, str], bool] = lambda case, dtype: True
    #: adapter dtype -> the pieces of the pass.
    rules: Callable[[str], Rules] | None = None
    #: (network, grads, batch size) -> the gradients the variant hands on.
    grads: Callable[[Network, Params, int], Params] | None = None
    learning_rate: Callable[[float], float] | None = None
    schedule: Callable[[list], list] | None = None
    accumulate: bool = False
    #: Compute the pass in this dtype (its results then also exactly representable in it).
    dtype: str | None = None
    #: Where it is seen, for the message: "autograd's np.maximum".
    seen_in: str = ""
    #: Of the exact comparison's allowance: 2 where both sides carry their own rounding.
    tolerance: float = 1.0
    tags: tuple[str, ...] = field(default=())

    def says(self) -> str:
        """Return the variant as the diagnosis states it: ``relu'(0) = 0.5 (autograd's np.maximum)``."""
        return f"{self.name} ({self.seen_in})" if self.seen_in else self.name


# -- pieces of the pass ----------------------------------------------------------------------


def _with_activation(name: str, derivative: Callable[..., np.ndarray]) -> Callable[[str], Rules]:
    activations = {**ACTIVATION_FUNCTIONS, name: Activation(name, ACTIVATION_FUNCTIONS[name].function, derivative)}
    return lambda dtype: Rules(activations, REFERENCE_RULES.losses, REFERENCE_RULES.normaliser)


def _with_loss(loss: str, value: Callable[..., Any] | None = None, delta: Callable[..., Any] | None = None,
               dtype_dependent: Callable[[str], tuple] | None = None) -> Callable[[str], Rules]:
    def rules(dtype: str) -> Rules:
        pair = dtype_dependent(dtype) if dtype_dependent else (value, delta)
        default_value, default_delta = LOSS_FUNCTIONS[loss]
        losses = {**LOSS_FUNCTIONS, loss: (pair[0] or default_value, pair[1] or default_delta)}
        return Rules(REFERENCE_RULES.activations, losses, REFERENCE_RULES.normaliser)

    return rules


def _relu_derivative_at_zero(value: float) -> Callable[..., np.ndarray]:
    return lambda z, a=None: np.where(np.real(z) > 0, 1.0, np.where(np.real(z) == 0, value, 0.0))


def _mse_delta_times(factor: float) -> Callable[..., np.ndarray]:
    return lambda z, a, y, activation: factor * (a - y) * activation.derivative(z, a)


def _bce_values(clip: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]) -> Callable[[str], tuple]:
    """Return dtype -> (bce value from clipped logs, exact delta): how sklearn and numpy-ml take their logs."""

    def for_dtype(dtype: str) -> tuple:
        eps = LOG_LOSS_EPS

        def value(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
            log_p, log_q = clip(sigmoid(z), eps)
            return -np.sum(y * log_p + (1 - y) * log_q)

        return value, None

    return for_dtype


def _torch_bce(dtype: str) -> tuple:
    """Return torch's BCELoss: logs of the probability rounded to ``dtype``, clamped at -100; gradient floor."""

    def probability(z: np.ndarray) -> np.ndarray:
        return np.asarray(sigmoid(z), dtype=dtype).astype(np.float64)

    def value(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = probability(z)
        with np.errstate(divide="ignore"):
            log_p, log_q = np.maximum(np.log(p), -100.0), np.maximum(np.log(1 - p), -100.0)
        return -np.sum(y * log_p + (1 - y) * log_q)

    def delta(z: np.ndarray, a: np.ndarray, y: np.ndarray, activation: Activation) -> np.ndarray:
        p = probability(z)
        slope = p * (1 - p)  # sigmoid's backward, from the rounded output
        return (p - y) / np.maximum(slope, TORCH_BCE_GRADIENT_FLOOR) * slope

    return value, delta


def _smoothed(value: bool) -> Callable[..., np.ndarray]:
    def smoothed_targets(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        classes = z.shape[1]
        return (1 - LABEL_SMOOTHING) * one_hot(labels, classes) + LABEL_SMOOTHING / classes

    if value:
        return lambda z, a, labels: -np.sum(smoothed_targets(z, labels) * log_softmax(z))
    return lambda z, a, labels, activation: np.exp(log_softmax(z)) - smoothed_targets(z, labels)


def _per_sample_normaliser(loss: str, reduction: str, n_samples: int, n_outputs: int) -> int:
    return 1 if reduction == "sum" else n_samples


# -- where a variant can show ----------------------------------------------------------------


def _uses_derivative(case: Case, name: str) -> bool:
    """Return whether the backward pass multiplies by activation ``name``'s derivative somewhere."""
    network = case.network
    hidden = name in network.activations[:-1]
    return hidden or (network.activations[-1] == name and network.loss == "mse")


def _dead_relu(case: Case, dtype: str) -> bool:
    if not _uses_derivative(case, "relu"):
        return False
    zs, _ = _forward(case.network, case.params, case.x)
    return any(name == "relu" and bool((z == 0).any()) for z, name in zip(zs, case.network.activations))


def _square_layer(case: Case, dtype: str) -> bool:
    return any(n_in == n_out > 1 for n_in, n_out in zip(case.network.sizes[:-1], case.network.sizes[1:]))


def _transposed_square(network: Network, grads: Params, batch: int) -> Params:
    return [(d_weight.T.copy() if d_weight.shape[0] == d_weight.shape[1] else d_weight, d_bias)
            for d_weight, d_bias in grads]


def _bias_mean(network: Network, grads: Params, batch: int) -> Params:
    return [(d_weight, None if d_bias is None else d_bias / batch) for d_weight, d_bias in grads]


def _partial_batches(case: Case, dtype: str) -> bool:
    return len({len(batch) for batch in case.batches}) > 1


def _drop_partial(batches: list) -> list:
    largest = max(len(batch) for batch in batches)
    return [batch for batch in batches if len(batch) == largest]


EVERYWHERE = frozenset({"loss", "gradient", "update", "trajectory"})
STEPS = frozenset({"gradient", "update", "trajectory"})

CATALOGUE: tuple[Variant, ...] = (
    Variant("relu'(0) = 0.5", "relu's derivative at exactly 0 taken as 1/2 instead of 0", STEPS, _dead_relu,
            rules=_with_activation("relu", _relu_derivative_at_zero(0.5)), seen_in="autograd's np.maximum"),
    Variant("relu'(0) = 1", "relu's derivative at exactly 0 taken as 1 instead of 0 (z >= 0)", STEPS, _dead_relu,
            rules=_with_activation("relu", _relu_derivative_at_zero(1.0))),
    Variant("mse without its factor 2", "dJ/da = (a - y) / N instead of 2 (a - y) / N", STEPS,
            lambda case, dtype: case.network.loss == "mse", rules=_with_loss("mse", delta=_mse_delta_times(1.0))),
    Variant("mse with a factor 1/2", "J = (1/2N) sum (a - y)^2, as optax.l2_loss", EVERYWHERE,
            lambda case, dtype: case.network.loss == "mse",
            rules=_with_loss("mse", value=lambda z, a, y: 0.5 * np.sum((a - y) ** 2), delta=_mse_delta_times(1.0))),
    Variant("a mean over samples instead of over all elements", "N = m instead of m n_L for mse and bce",
            EVERYWHERE,
            lambda case, dtype: case.network.loss in ("mse", "bce") and case.network.reduction == "mean"
            and case.network.sizes[-1] > 1,
            rules=lambda dtype: Rules(REFERENCE_RULES.activations, REFERENCE_RULES.losses, _per_sample_normaliser)),
    Variant("loss and gradients computed in float32", "a float64 claim whose pass runs in float32",
            frozenset({"loss", "gradient"}),
            lambda case, dtype: dtype == "float64", dtype="float32", tolerance=2.0,
            seen_in="Keras 3 on JAX computes float64 means in float32"),
    Variant("the learning rate rounded to float32", "theta - float32(lr) dJ/dtheta beside float64 params",
            frozenset({"update", "trajectory"}),
            lambda case, dtype: dtype == "float64" and float(np.float32(case.learning_rate)) != case.learning_rate,
            learning_rate=lambda rate: float(np.float32(rate)), seen_in="tinygrad, Keras"),
    Variant("probabilities clipped at eps", "bce's logs of p clipped to [eps, 1 - eps], eps float32's",
            frozenset({"loss"}), lambda case, dtype: case.network.loss == "bce",
            rules=_with_loss("bce", dtype_dependent=_bce_values(
                lambda p, eps: (np.log(np.clip(p, eps, 1 - eps)), np.log(1 - np.clip(p, eps, 1 - eps))))),
            seen_in="scikit-learn's log-loss"),
    Variant("-log(p + eps)", "bce as -(y log(p + eps) + (1 - y) log(1 - p + eps)), eps float32's",
            frozenset({"loss"}), lambda case, dtype: case.network.loss == "bce",
            rules=_with_loss("bce", dtype_dependent=_bce_values(
                lambda p, eps: (np.log(p + eps), np.log(1 - p + eps)))), seen_in="numpy-ml"),
    Variant(f"label smoothing {LABEL_SMOOTHING}", "cross-entropy against (1 - e) one_hot + e / K", EVERYWHERE,
            lambda case, dtype: case.network.loss == "cross_entropy",
            rules=_with_loss("cross_entropy", value=_smoothed(True), delta=_smoothed(False))),
    Variant("sigmoid' without the square", "sigmoid'(z) as s instead of s - s^2", STEPS,
            lambda case, dtype: _uses_derivative(case, "sigmoid"),
            rules=_with_activation("sigmoid", lambda z, a=None: sigmoid(z))),
    Variant("tanh' without the square", "tanh'(z) as 1 - t instead of 1 - t^2", STEPS,
            lambda case, dtype: _uses_derivative(case, "tanh"),
            rules=_with_activation("tanh", lambda z, a=None: 1.0 - tanh(z))),
    Variant("a transposed weight gradient", "dW^T where W is square (elsewhere the shape would differ)", STEPS,
            _square_layer, grads=_transposed_square),
    Variant("the bias gradient as a mean", "db = mean over the batch of delta instead of the sum", STEPS,
            lambda case, dtype: case.network.bias and len(case.x) > 1, grads=_bias_mean),
    Variant("gradients accumulated across iterations", "no zero_grad(): each step adds to the last's gradients",
            frozenset({"trajectory"}), lambda case, dtype: len(case.batches) > 1, accumulate=True),
    Variant("batches taken in reverse", "the schedule followed from its last batch to its first",
            frozenset({"trajectory"}), lambda case, dtype: len(case.batches) > 1,
            schedule=lambda batches: list(reversed(batches))),
    Variant("the last partial batch dropped", "only full batches trained on (drop_last)", frozenset({"trajectory"}),
            _partial_batches, schedule=_drop_partial),
    Variant("torch BCELoss clamp", "BCELoss on rounded probabilities: logs clamped at -100, gradient floor 1e-12",
            EVERYWHERE, lambda case, dtype: case.network.loss == "bce",
            rules=_with_loss("bce", dtype_dependent=_torch_bce), seen_in="torch.nn.BCELoss", tags=("convention",)),
)
BY_NAME = {variant.name: variant for variant in CATALOGUE}
