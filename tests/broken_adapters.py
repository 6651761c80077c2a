"""Deliberately broken backprop implementations: the suite must reject every one.

``CorrectNumpy`` is a plain NumPy backprop written the way people write it
(not the reference's code); each subclass injects one classic bug by
overriding one small step. ``test_suite_catches_bugs.py`` runs the suite
against each and requires a failure, and requires ``CorrectNumpy`` to pass.
"""

from __future__ import annotations

import math

import numpy as np

from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.specs import parse

_erf = np.vectorize(math.erf, otypes=[float])
_GELU_K = math.sqrt(2 / math.pi)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _gelu_tanh(z):
    return 0.5 * z * (1 + np.tanh(_GELU_K * (z + 0.044715 * z**3)))


def _gelu_tanh_derivative(z):
    t = np.tanh(_GELU_K * (z + 0.044715 * z**3))
    return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * _GELU_K * (1 + 3 * 0.044715 * z * z)


class _BySpec(dict):
    """Functions of (z, parameters) by name, looked up by spec: ``table["elu(alpha=0.5)"](z)``."""

    def __getitem__(self, spec):
        name, values = parse(spec, PARAMETERS, "activation")
        function = dict.__getitem__(self, name)
        return lambda z: function(z, **values)


FUNCTIONS = _BySpec({
    "identity": lambda z: z,
    "sigmoid": lambda z: _sigmoid(z),
    "tanh": lambda z: np.tanh(z),
    "relu": lambda z: np.maximum(z, 0),
    "gelu": lambda z: z * 0.5 * (1 + _erf(z / math.sqrt(2))),
    "gelu_tanh": _gelu_tanh,
    "silu": lambda z: z * _sigmoid(z),
    "softplus": lambda z: np.logaddexp(0.0, z),
    "leaky_relu": lambda z, negative_slope: np.where(z > 0, z, negative_slope * z),
    "elu": lambda z, alpha: np.where(z > 0, z, alpha * np.expm1(np.minimum(z, 0))),
})
DERIVATIVES = _BySpec({
    "identity": lambda z: np.ones_like(z),
    "sigmoid": lambda z: _sigmoid(z) * (1 - _sigmoid(z)),
    "tanh": lambda z: 1 - np.tanh(z) ** 2,
    "relu": lambda z: (z > 0).astype(float),
    "gelu": lambda z: 0.5 * (1 + _erf(z / math.sqrt(2))) + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi),
    "gelu_tanh": _gelu_tanh_derivative,
    "silu": lambda z: _sigmoid(z) * (1 + z * (1 - _sigmoid(z))),
    "softplus": lambda z: _sigmoid(z),
    "leaky_relu": lambda z, negative_slope: np.where(z > 0, 1.0, negative_slope),
    "elu": lambda z, alpha: np.where(z > 0, 1.0, alpha * np.exp(np.minimum(z, 0))),
})


def _softmax(z):
    exps = np.exp(z - z.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


class CorrectNumpy:
    """A correct float64 backprop of every activation and loss: the control that must be accepted."""

    name = "numpy-correct"
    dtype = "float64"

    def loss_parameter(self, network, name):
        return parse(network.loss, PARAMETERS, "loss")[1][name]

    def targets(self, network, z, y):
        smoothing = self.loss_parameter(network, "label_smoothing")
        return (1 - smoothing) * np.eye(z.shape[1])[y] + smoothing / z.shape[1]

    # -- pieces a bug can replace ------------------------------------------
    def activation(self, name, z):
        return FUNCTIONS[name](z)

    def derivative(self, name, z, a):
        return DERIVATIVES[name](z)

    def normaliser(self, network, m, n_out):
        if network.reduction == "sum":
            return 1
        return m if network.loss_name == "cross_entropy" else m * n_out

    def output_delta(self, network, z, a, y, n):
        if network.loss == "mse":
            return 2 * (a - y) * self.derivative(network.activations[-1], z, a) / n
        if network.loss_name == "huber":
            delta = self.loss_parameter(network, "delta")
            return np.clip(a - y, -delta, delta) * self.derivative(network.activations[-1], z, a) / n
        if network.loss_name in ("bce", "bce_with_logits"):
            return (_sigmoid(z) - y) / n
        return (_softmax(z) - self.targets(network, z, y)) / n

    def weight_gradient(self, delta, a_previous):
        return delta.T @ a_previous

    def bias_gradient(self, delta):
        return delta.sum(axis=0)

    def propagate(self, delta, weight, name, z, a):
        return (delta @ weight) * self.derivative(name, z, a)

    # -- the protocol --------------------------------------------------------
    def forward(self, network, params, x):
        return self._forward(network, params, x)[1][-1]

    def _forward(self, network, params, x):
        zs, activations = [], [np.asarray(x, dtype=float)]
        for (weight, bias), name in zip(params, network.activations):
            z = activations[-1] @ weight.T + (0 if bias is None else bias)
            zs.append(z)
            activations.append(self.activation(name, z))
        return zs, activations

    def _loss(self, network, z, a, y, n):
        if network.loss == "mse":
            return float(((a - y) ** 2).sum() / n)
        if network.loss_name == "huber":
            delta, d = self.loss_parameter(network, "delta"), np.abs(a - y)
            return float(np.where(d <= delta, 0.5 * d * d, delta * (d - 0.5 * delta)).sum() / n)
        if network.loss_name in ("bce", "bce_with_logits"):
            return float((np.logaddexp(0, z) - y * z).sum() / n)
        log_p = z - z.max(axis=1, keepdims=True)
        log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
        return float(-(self.targets(network, z, y) * log_p).sum() / n)

    def loss_and_gradients(self, network, params, x, y, n=None):
        zs, activations = self._forward(network, params, x)
        n = n or self.normaliser(network, len(x), network.sizes[-1])
        delta = self.output_delta(network, zs[-1], activations[-1], y, n)
        grads = [None] * len(params)
        for index in reversed(range(len(params))):
            weight, bias = params[index]
            grads[index] = (
                self.weight_gradient(delta, activations[index]),
                None if bias is None else self.bias_gradient(delta),
            )
            if index:
                name = network.activations[index - 1]
                delta = self.propagate(delta, weight, name, zs[index - 1], activations[index])
        return self._loss(network, zs[-1], activations[-1], y, n), grads

    def sgd_step(self, network, params, x, y, learning_rate):
        _, grads = self.loss_and_gradients(network, params, x, y)
        return [
            (w - learning_rate * dw, None if b is None else b - learning_rate * db)
            for (w, b), (dw, db) in zip(params, grads)
        ]


class MissingActivationDerivative(CorrectNumpy):
    name = "bug: missing activation derivative"

    def propagate(self, delta, weight, name, z, a):
        return delta @ weight


class DerivativeAtActivation(CorrectNumpy):
    name = "bug: derivative taken at the activation, not the pre-activation"

    def derivative(self, name, z, a):
        return DERIVATIVES[name](FUNCTIONS[name](z))


class BiasGradientNotSummed(CorrectNumpy):
    name = "bug: bias gradient not summed over the batch"

    def bias_gradient(self, delta):
        return delta[0]


class NoDivisionByBatchSize(CorrectNumpy):
    name = "bug: mean reduction without division by the batch size"

    def normaliser(self, network, m, n_out):
        return 1 if network.reduction == "sum" or network.loss_name == "cross_entropy" else n_out


class UpdateBeforeLowerDelta(CorrectNumpy):
    name = "bug: weights updated before the lower layer's delta"

    def sgd_step(self, network, params, x, y, learning_rate):
        zs, activations = self._forward(network, params, x)
        n = self.normaliser(network, len(x), network.sizes[-1])
        delta = self.output_delta(network, zs[-1], activations[-1], y, n)
        new = list(params)
        for index in reversed(range(len(params))):
            weight, bias = params[index]
            weight = weight - learning_rate * self.weight_gradient(delta, activations[index])
            bias = None if bias is None else bias - learning_rate * self.bias_gradient(delta)
            new[index] = (weight, bias)
            if index:  # uses the already-updated weight
                name = network.activations[index - 1]
                delta = self.propagate(delta, weight, name, zs[index - 1], activations[index])
        return new


class TransposedSquareWeightGradient(CorrectNumpy):
    name = "bug: weight gradient transposed on square layers"

    def weight_gradient(self, delta, a_previous):
        gradient = delta.T @ a_previous
        return gradient.T if gradient.shape[0] == gradient.shape[1] else gradient


class ReluDerivativeOneAtZero(CorrectNumpy):
    name = "bug: relu'(0) = 1"

    def derivative(self, name, z, a):
        return (z >= 0).astype(float) if name == "relu" else DERIVATIVES[name](z)


class CrossEntropyWithoutOneHot(CorrectNumpy):
    name = "bug: cross-entropy gradient without the one-hot subtraction"

    def output_delta(self, network, z, a, y, n):
        if network.loss != "cross_entropy":
            return super().output_delta(network, z, a, y, n)
        softmax = np.exp(z - z.max(axis=1, keepdims=True))
        return softmax / softmax.sum(axis=1, keepdims=True) / n


class PartialBatchOverFullSize(CorrectNumpy):
    name = "bug: last partial batch averaged over the full batch size"

    def train(self, network, params, x, y, batches, learning_rate):
        from backprop_conformance.adapters.protocol import Trajectory

        full = len(batches[0])
        losses = []
        for batch in batches:
            n = self.normaliser(network, full, network.sizes[-1])
            value, grads = self.loss_and_gradients(network, params, x[batch], y[batch], n=n)
            losses.append(value)
            params = [
                (w - learning_rate * dw, None if b is None else b - learning_rate * db)
                for (w, b), (dw, db) in zip(params, grads)
            ]
        return Trajectory(np.array(losses), params)


class OneEntryOffByOnePPM(CorrectNumpy):
    name = "bug: one gradient entry off by a relative 1e-6"

    def loss_and_gradients(self, network, params, x, y, n=None):
        value, grads = super().loss_and_gradients(network, params, x, y, n)
        grads[0][0][0, 0] *= 1 + 1e-6
        return value, grads


BROKEN = {
    "missing_activation_derivative": MissingActivationDerivative,
    "derivative_at_activation": DerivativeAtActivation,
    "bias_gradient_not_summed": BiasGradientNotSummed,
    "no_division_by_batch_size": NoDivisionByBatchSize,
    "update_before_lower_delta": UpdateBeforeLowerDelta,
    "transposed_square_weight_gradient": TransposedSquareWeightGradient,
    "relu_derivative_one_at_zero": ReluDerivativeOneAtZero,
    "cross_entropy_without_one_hot": CrossEntropyWithoutOneHot,
    "partial_batch_over_full_size": PartialBatchOverFullSize,
    "one_entry_off_by_one_ppm": OneEntryOffByOnePPM,
}
