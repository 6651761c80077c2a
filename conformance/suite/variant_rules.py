"""The pieces ``suite.variants`` builds its deviations from: swapped activations and losses, transforms, tests.

Each builder returns what a ``Variant`` field takes: ``(dtype, network) ->
Rules`` for ``rules``, ``(case, dtype) -> bool`` for ``applies``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, Activation, sigmoid, softplus
from backprop_conformance.reference.backprop import REFERENCE_RULES, Rules, _forward
from backprop_conformance.reference.conventions import PARAMETERS, SOFTPLUS_TORCH_THRESHOLD
from backprop_conformance.reference.losses import LOSS_FUNCTIONS, log_softmax, one_hot
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.specs import base, parse
from backprop_conformance.suite.case import Case

#: float32's 1e-12, the floor BCELoss divides its gradient by (a float32 constant even in float64).
TORCH_BCE_GRADIENT_FLOOR = float(np.float32(1e-12))
LABEL_SMOOTHING = 0.1
#: The eps of the log-loss variants: float32's (scikit-learn's clip in float32; Keras's epsilon is 1e-7).
#: float64's own eps is no use here: a deviation of eps / p hides inside the u / p the model allows for logs.
LOG_LOSS_EPS = float(np.finfo(np.float32).eps)


# -- pieces of the pass ----------------------------------------------------------------------


def with_activation(name: str, derivative: Callable[[str], Callable[..., np.ndarray]],
                     function: Callable[[str], Callable[..., np.ndarray]] | None = None) -> Callable[..., Rules]:
    """Return (dtype, network) -> rules in which every layer of activation ``name`` has another derivative
    (and function, if given), each built from the layer's own spec (its parameters)."""

    def rules(dtype: str, network: Network) -> Rules:
        table = REFERENCE_RULES.activations
        for spec in set(network.activations):
            if base(spec) == name:
                own = table[spec]
                table = table.replaced(spec, Activation(
                    name, function(spec) if function else own.function, derivative(spec)))
        return Rules(table, REFERENCE_RULES.losses, REFERENCE_RULES.normaliser)

    return rules


def with_loss(loss: str, value: Callable[..., Any] | None = None, delta: Callable[..., Any] | None = None,
               dtype_dependent: Callable[[str], tuple] | None = None,
               from_spec: Callable[[dict[str, float]], tuple] | None = None) -> Callable[..., Rules]:
    """Return (dtype, network) -> rules in which the loss ``loss`` is another (value, delta): given, built for
    the dtype, or built from the network's loss parameters; a missing half is the reference's."""

    def rules(dtype: str, network: Network) -> Rules:
        if base(network.loss) != loss:
            return REFERENCE_RULES
        if from_spec is not None:
            pair = from_spec(parse(network.loss, PARAMETERS, "loss")[1])
        else:
            pair = dtype_dependent(dtype) if dtype_dependent else (value, delta)
        default_value, default_delta = LOSS_FUNCTIONS[network.loss]
        losses = LOSS_FUNCTIONS.replaced(network.loss, (pair[0] or default_value, pair[1] or default_delta))
        return Rules(REFERENCE_RULES.activations, losses, REFERENCE_RULES.normaliser)

    return rules


def relu_derivative_at_zero(value: float) -> Callable[[str], Callable[..., np.ndarray]]:
    return lambda spec: lambda z, a=None: np.where(np.real(z) > 0, 1.0, np.where(np.real(z) == 0, value, 0.0))


def mse_delta_times(factor: float) -> Callable[..., np.ndarray]:
    return lambda z, a, y, activation: factor * (a - y) * activation.derivative(z, a)


def bce_values(clip: Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]) -> Callable[[str], tuple]:
    """Return dtype -> (bce value from clipped logs, exact delta): how sklearn and numpy-ml take their logs."""

    def for_dtype(dtype: str) -> tuple:
        eps = LOG_LOSS_EPS

        def value(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> np.ndarray:
            log_p, log_q = clip(sigmoid(z), eps)
            return -np.sum(y * log_p + (1 - y) * log_q)

        return value, None

    return for_dtype


def torch_bce(dtype: str) -> tuple:
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


def smoothed(value: bool, times: int = 1, smoothing: float = LABEL_SMOOTHING) -> Callable[..., np.ndarray]:
    """Return cross-entropy's value (or delta) against one_hot smoothed ``times`` times by ``smoothing``."""

    def smoothed_targets(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        classes, targets = z.shape[1], one_hot(labels, z.shape[1])
        for _ in range(times):
            targets = (1 - smoothing) * targets + smoothing / classes
        return targets

    if value:
        return lambda z, a, labels: -np.sum(smoothed_targets(z, labels) * log_softmax(z))
    return lambda z, a, labels, activation: np.exp(log_softmax(z)) - smoothed_targets(z, labels)


def smoothed_twice(parameters: dict[str, float]) -> tuple:
    smoothing = parameters["label_smoothing"]
    return smoothed(True, 2, smoothing), smoothed(False, 2, smoothing)


def smooth_l1(parameters: dict[str, float]) -> tuple:
    """Return huber(delta) / delta: torch's SmoothL1Loss(beta=delta)."""
    value, delta = LOSS_FUNCTIONS[f"huber(delta={parameters['delta']!r})" if parameters["delta"] != 1 else "huber"]
    scale = 1.0 / parameters["delta"]
    return (lambda z, a, y: scale * value(z, a, y),
            lambda z, a, y, activation: scale * delta(z, a, y, activation))


def torch_softplus(spec: str) -> Callable[..., np.ndarray]:
    return lambda z, out=None: np.where(np.real(z) > SOFTPLUS_TORCH_THRESHOLD, z, softplus(z))


def torch_softplus_derivative(spec: str) -> Callable[..., np.ndarray]:
    return lambda z, a=None: np.where(np.real(z) > SOFTPLUS_TORCH_THRESHOLD, 1.0, sigmoid(z))


def naive_softplus(spec: str) -> Callable[..., np.ndarray]:
    return lambda z, out=None: np.log(1.0 + np.exp(z))


def leaky_derivative_one_at_zero(spec: str) -> Callable[..., np.ndarray]:
    slope = parse(spec, PARAMETERS, "activation")[1]["negative_slope"]
    return lambda z, a=None: np.where(np.real(z) >= 0, 1.0, slope)


def leaky_keras(part: str) -> Callable[[str], Callable[..., np.ndarray]]:
    table = ACTIVATION_FUNCTIONS["leaky_relu(negative_slope=0.2)"]
    return lambda spec: table.function if part == "function" else table.derivative


#: Losses whose mean is over every element (the normaliser m n_L).
ELEMENT_MEANS = ("mse", "bce", "huber", "bce_with_logits")


def per_sample_normaliser(loss: str, reduction: str, n_samples: int, n_outputs: int) -> int:
    return 1 if reduction == "sum" else n_samples


# -- where a variant can show ----------------------------------------------------------------


def uses_derivative(case: Case, name: str) -> bool:
    """Return whether the backward pass multiplies by activation ``name``'s derivative somewhere."""
    network = case.network
    names = network.activation_names
    return name in names[:-1] or (names[-1] == name and network.loss_name in ("mse", "huber"))


def uses(name: str) -> Callable[[Case, str], bool]:
    return lambda case, dtype: name in case.network.activation_names


def dead(name: str) -> Callable[[Case, str], bool]:
    """Return case -> whether some unit of a layer of activation ``name`` has z exactly 0 (its kink)."""

    def applies(case: Case, dtype: str) -> bool:
        if not uses_derivative(case, name):
            return False
        zs, _ = _forward(case.network, case.params, case.x)
        return any(base(spec) == name and bool((z == 0).any()) for z, spec in zip(zs, case.network.activations))

    return applies


def above_softplus_threshold(case: Case, dtype: str) -> bool:
    zs, _ = _forward(case.network, case.params, case.x)
    return any(base(spec) == "softplus" and bool((z > SOFTPLUS_TORCH_THRESHOLD).any())
               for z, spec in zip(zs, case.network.activations))


dead_relu = dead("relu")


def square_layer(case: Case, dtype: str) -> bool:
    return any(n_in == n_out > 1 for n_in, n_out in zip(case.network.sizes[:-1], case.network.sizes[1:]))


def transposed_square(network: Network, grads: Params, batch: int) -> Params:
    return [(d_weight.T.copy() if d_weight.shape[0] == d_weight.shape[1] else d_weight, d_bias)
            for d_weight, d_bias in grads]


def bias_mean(network: Network, grads: Params, batch: int) -> Params:
    return [(d_weight, None if d_bias is None else d_bias / batch) for d_weight, d_bias in grads]


def partial_batches(case: Case, dtype: str) -> bool:
    return len({len(batch) for batch in case.batches}) > 1


def drop_partial(batches: list) -> list:
    largest = max(len(batch) for batch in batches)
    return [batch for batch in batches if len(batch) == largest]
