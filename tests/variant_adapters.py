"""One broken NumPy adapter per variant of ``suite.variants``, each written the way the bug is written.

These are not the variants' own computations: each overrides one step of
``tests.broken_adapters.CorrectNumpy`` as a library that has the bug would
(``test_variants.py`` requires the suite to reject each and to name it).
``VARIANT_ADAPTERS`` maps a variant's name to its adapter and the suite
test (``-k``) where it shows.
"""

from __future__ import annotations

import math

import numpy as np

from backprop_conformance.adapters import Trajectory, Unsupported
from tests.broken_adapters import DERIVATIVES, FUNCTIONS, CorrectNumpy

SMOOTHING = 0.1


def _softmax(z):
    exps = np.exp(z - z.max(axis=1, keepdims=True))
    return exps / exps.sum(axis=1, keepdims=True)


class ReluHalfAtZero(CorrectNumpy):
    name = "relu'(0) = 0.5 as np.maximum's gradient"

    def derivative(self, name, z, a):
        return np.where(z > 0, 1.0, np.where(z == 0, 0.5, 0.0)) if name == "relu" else DERIVATIVES[name](z)


class ReluOneAtZero(CorrectNumpy):
    name = "relu'(0) = 1"

    def derivative(self, name, z, a):
        return (z >= 0).astype(float) if name == "relu" else DERIVATIVES[name](z)


class MseWithoutTwo(CorrectNumpy):
    name = "mse gradient without 2"

    def output_delta(self, network, z, a, y, n):
        if network.loss == "mse":
            return (a - y) * self.derivative(network.activations[-1], z, a) / n
        return super().output_delta(network, z, a, y, n)


class MseHalf(MseWithoutTwo):
    name = "mse as 1/2 squared error"

    def _loss(self, network, z, a, y, n):
        return 0.5 * super()._loss(network, z, a, y, n) if network.loss == "mse" else super()._loss(network, z, a, y, n)


class MeanOverSamples(CorrectNumpy):
    name = "mean over samples"

    def normaliser(self, network, m, n_out):
        return 1 if network.reduction == "sum" else m


class Float32Inside(CorrectNumpy):
    name = "float32 inside"

    def _forward(self, network, params, x):
        zs, activations = [], [np.asarray(x, dtype=np.float32)]
        for (weight, bias), name in zip(params, network.activations):
            z = activations[-1] @ weight.T + (np.float32(0) if bias is None else bias)
            zs.append(z)
            activations.append(FUNCTIONS[name](z).astype(np.float32))
        return zs, activations

    def loss_and_gradients(self, network, params, x, y, n=None):
        single = [(w.astype(np.float32), None if b is None else b.astype(np.float32)) for w, b in params]
        targets = y if y.dtype.kind in "iu" else y.astype(np.float32)
        value, grads = super().loss_and_gradients(network, single, x, targets, n)
        return float(np.float32(value)), [(w.astype(np.float64), None if b is None else b.astype(np.float64))
                                          for w, b in grads]


class LearningRateFloat32(CorrectNumpy):
    name = "learning rate as float32"

    def sgd_step(self, network, params, x, y, learning_rate):
        return super().sgd_step(network, params, x, y, float(np.float32(learning_rate)))


class ClippedProbabilities(CorrectNumpy):
    name = "log-loss clipped at eps"

    def _loss(self, network, z, a, y, n):
        if network.loss != "bce":
            return super()._loss(network, z, a, y, n)
        eps = np.finfo(np.float32).eps
        p = np.clip(1 / (1 + np.exp(-z)), eps, 1 - eps)
        return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).sum() / n)


class LogPlusEps(CorrectNumpy):
    name = "-log(p + eps)"

    def _loss(self, network, z, a, y, n):
        if network.loss != "bce":
            return super()._loss(network, z, a, y, n)
        eps = np.finfo(np.float32).eps
        p = 1 / (1 + np.exp(-z))
        return float(-(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)).sum() / n)


class LabelSmoothing(CorrectNumpy):
    name = "label smoothing"

    def _targets(self, z, y):
        return (1 - SMOOTHING) * np.eye(z.shape[1])[y] + SMOOTHING / z.shape[1]

    def output_delta(self, network, z, a, y, n):
        if network.loss != "cross_entropy":
            return super().output_delta(network, z, a, y, n)
        return (_softmax(z) - self._targets(z, y)) / n

    def _loss(self, network, z, a, y, n):
        if network.loss != "cross_entropy":
            return super()._loss(network, z, a, y, n)
        return float(-(self._targets(z, y) * np.log(_softmax(z))).sum() / n)


class SigmoidWithoutSquare(CorrectNumpy):
    name = "sigmoid' = s"

    def derivative(self, name, z, a):
        return 1 / (1 + np.exp(-z)) if name == "sigmoid" else DERIVATIVES[name](z)


class TanhWithoutSquare(CorrectNumpy):
    name = "tanh' = 1 - t"

    def derivative(self, name, z, a):
        return 1 - np.tanh(z) if name == "tanh" else DERIVATIVES[name](z)


class TransposedSquare(CorrectNumpy):
    name = "transposed square dW"

    def weight_gradient(self, delta, a_previous):
        gradient = delta.T @ a_previous
        return gradient.T if gradient.shape[0] == gradient.shape[1] else gradient


class BiasMean(CorrectNumpy):
    name = "bias gradient as a mean"

    def bias_gradient(self, delta):
        return delta.mean(axis=0)


class _Trainer(CorrectNumpy):
    """A train loop of its own, with one hook for the schedule and one for the gradients."""

    def schedule(self, batches):
        return batches

    def train(self, network, params, x, y, batches, learning_rate):
        losses, carried = [], None
        for batch in self.schedule(batches):
            value, grads = self.loss_and_gradients(network, params, x[batch], y[batch])
            losses.append(value)
            grads = carried = self.carry(grads, carried)
            params = [(w - learning_rate * dw, None if b is None else b - learning_rate * db)
                      for (w, b), (dw, db) in zip(params, grads)]
        return Trajectory(np.array(losses), params)

    def carry(self, grads, carried):
        return grads


class AccumulatedGradients(_Trainer):
    name = "no zero_grad"

    def carry(self, grads, carried):
        if carried is None:
            return grads
        return [(g + c, None if gb is None else gb + cb) for (g, gb), (c, cb) in zip(grads, carried)]


class ReversedBatches(_Trainer):
    name = "batches in reverse"

    def schedule(self, batches):
        return list(reversed(batches))


class DropLastPartial(_Trainer):
    name = "drop_last"

    def schedule(self, batches):
        largest = max(len(batch) for batch in batches)
        return [batch for batch in batches if len(batch) == largest]


class MseWithoutTwoByConvention(MseWithoutTwo):
    """The same deviation, declared as the implementation's convention: a known divergence, not a failure."""

    name = "mse without 2, by design"
    conventions = ("mse without its factor 2",)


class NoSigmoidNoBce(CorrectNumpy):
    """A partial implementation: it says what it cannot do, and is judged on the rest."""

    name = "partial numpy"

    def unsupported(self, network, method):
        if network.loss_name in ("bce", "bce_with_logits"):
            return "no bce: only mse and cross_entropy are implemented"
        if "sigmoid" in network.activations:
            return "no sigmoid: only identity, tanh and relu are implemented"
        return None


class NoTrain(CorrectNumpy):
    """Raises Unsupported from a method instead of declaring it up front."""

    name = "no train"

    def train(self, network, params, x, y, batches, learning_rate):
        raise Unsupported("train is not implemented")


class Nothing(CorrectNumpy):
    name = "nothing"

    def unsupported(self, network, method):
        return "this implementation can do no network yet"


#: The control: CorrectNumpy does every activation and loss.
ModernNumpy = CorrectNumpy


class GeluTanhApproximation(ModernNumpy):
    name = "gelu as jax.nn.gelu's default"

    def activation(self, name, z):
        if name == "gelu":
            return 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))
        return super().activation(name, z)

    def derivative(self, name, z, a):
        if name == "gelu":
            inner = math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)
            t = np.tanh(inner)
            return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * math.sqrt(2 / math.pi) * (1 + 3 * 0.044715 * z * z)
        return super().derivative(name, z, a)


class NaiveSoftplus(ModernNumpy):
    name = "softplus as log(1 + exp(z))"

    def activation(self, name, z):
        with np.errstate(over="ignore"):
            return np.log(1 + np.exp(z)) if name == "softplus" else super().activation(name, z)


class LeakySlopeKeras(ModernNumpy):
    name = "leaky_relu at Keras's slope"

    def activation(self, name, z):
        return np.where(z > 0, z, 0.2 * z) if name == "leaky_relu" else super().activation(name, z)

    def derivative(self, name, z, a):
        return np.where(z > 0, 1.0, 0.2) if name == "leaky_relu" else super().derivative(name, z, a)


class HuberOverDelta(ModernNumpy):
    name = "huber with delta misplaced (SmoothL1)"

    def _loss(self, network, z, a, y, n):
        value = super()._loss(network, z, a, y, n)
        return value / self.loss_parameter(network, "delta") if network.loss_name == "huber" else value

    def output_delta(self, network, z, a, y, n):
        delta = super().output_delta(network, z, a, y, n)
        return delta / self.loss_parameter(network, "delta") if network.loss_name == "huber" else delta


class SmoothedTwice(ModernNumpy):
    name = "label smoothing applied twice"

    def targets(self, network, z, y):
        smoothing = self.loss_parameter(network, "label_smoothing")
        return (1 - smoothing) * super().targets(network, z, y) + smoothing / z.shape[1]


#: variant name -> (adapter class, the suite tests where it shows).
VARIANT_ADAPTERS = {
    "relu'(0) = 0.5": (ReluHalfAtZero, "test_gradients"),
    "relu'(0) = 1": (ReluOneAtZero, "test_gradients"),
    "mse without its factor 2": (MseWithoutTwo, "test_gradients"),
    "mse with a factor 1/2": (MseHalf, "test_gradients"),
    "a mean over samples instead of over all elements": (MeanOverSamples, "test_gradients"),
    "loss and gradients computed in float32": (Float32Inside, "test_gradients"),
    "the learning rate rounded to float32": (LearningRateFloat32, "test_sgd_step"),
    "probabilities clipped at eps": (ClippedProbabilities, "test_loss_value"),
    "-log(p + eps)": (LogPlusEps, "test_loss_value"),
    "label smoothing 0.1": (LabelSmoothing, "test_gradients"),
    "sigmoid' without the square": (SigmoidWithoutSquare, "test_gradients"),
    "tanh' without the square": (TanhWithoutSquare, "test_gradients"),
    "a transposed weight gradient": (TransposedSquare, "test_gradients"),
    "the bias gradient as a mean": (BiasMean, "test_gradients"),
    "gradients accumulated across iterations": (AccumulatedGradients, "test_training_trajectory"),
    "batches taken in reverse": (ReversedBatches, "test_training_trajectory"),
    "the last partial batch dropped": (DropLastPartial, "test_training_trajectory"),
    "gelu with the tanh approximation": (GeluTanhApproximation, "test_gradients"),
    "softplus as log(1 + exp(z))": (NaiveSoftplus, "test_forward_output"),
    "leaky_relu's slope 0.2": (LeakySlopeKeras, "test_gradients"),
    "huber divided by delta": (HuberOverDelta, "test_gradients"),
    "label smoothing applied twice": (SmoothedTwice, "test_gradients"),
}
