"""Optimizers written again, apart from the reference, behind ``CorrectNumpy``'s gradients: the control that
must pass in each convention, and one adapter per classic optimizer bug (``suite.variant_optimizers``).

``OPTIMIZER_VARIANT_ADAPTERS`` maps each optimizer variant's name to its adapter.
"""

from __future__ import annotations

import numpy as np

from backprop_conformance.adapters import Trajectory
from tests.broken_adapters import CorrectNumpy


class NumpyOptimizers(CorrectNumpy):
    """torch.optim's rules (``convention = "torch"``) or optax's, per parameter array, in float64."""

    name = "numpy optimizers (torch)"
    convention = "torch"
    # -- the knobs a bug turns ---------------------------------------------------------------
    correction_shift = 0  # t + shift in 1 - beta^t; None: no bias correction
    eps_inside = None  # None: as the convention has it
    decay_times_lr = True
    first_buffer_is_g = True
    decay_after = False

    @property
    def optimizer_conventions(self):
        return (self.convention,)

    def train(self, network, params, x, y, batches, learning_rate, optimizer=None):
        if optimizer is None:
            raise AssertionError("the optimizer tests always pass one")
        states = [[{}, {}] for _ in params]
        params = [[w.copy(), None if b is None else b.copy()] for w, b in params]
        losses = []
        for t, batch in enumerate(batches, start=1):
            value, grads = self.loss_and_gradients(network, params, x[batch], y[batch])
            losses.append(value)
            for layer, pair in enumerate(params):
                for kind in (0, 1):
                    if pair[kind] is not None:
                        pair[kind] = self.step(optimizer, t, pair[kind], grads[layer][kind], states[layer][kind])
        return Trajectory(np.array(losses), [(w, b) for w, b in params])

    def _eps_inside(self, o):
        if self.eps_inside is not None:
            return self.eps_inside
        return o.convention == "optax" and (o.name == "adagrad" or (o.name == "rmsprop" and o.eps_in_sqrt))

    def _root(self, o, value):
        return np.sqrt(value + o.eps) if self._eps_inside(o) else np.sqrt(value) + o.eps

    def step(self, o, t, theta, g, state):
        decay = o.weight_decay if o.name != "adamw" and not self.decay_after else 0.0
        g = g + decay * theta
        if o.name == "sgd":
            if o.momentum:
                if "b" not in state:
                    as_torch = self.first_buffer_is_g and o.convention == "torch"
                    state["b"] = g.copy() if as_torch else (1 - o.dampening) * g
                else:
                    state["b"] = o.momentum * state["b"] + (1 - o.dampening) * g
                g = g + o.momentum * state["b"] if o.nesterov else state["b"]
            new = theta - o.lr * g
        elif o.name in ("adam", "adamw"):
            b1, b2 = o.betas
            if o.name == "adamw":
                theta = theta * (1 - (o.lr if self.decay_times_lr else 1.0) * o.weight_decay)
            state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
            state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
            shift = self.correction_shift
            c1, c2 = (1.0, 1.0) if shift is None else (1 - b1 ** (t + shift), 1 - b2 ** (t + shift))
            m_hat, v_hat = state["m"] / c1, state["v"] / c2
            if o.nesterov:  # optax's: the first moment one step ahead
                ahead = 1.0 if shift is None else 1 - b1 ** (t + 1 + shift)
                m_hat = b1 * state["m"] / ahead + (1 - b1) * g / c1
            if o.amsgrad and o.convention == "torch":  # the maximum of the raw v, then corrected
                state["v_max"] = np.maximum(state.get("v_max", 0.0), state["v"])
                v_hat = state["v_max"] / c2
            elif o.amsgrad:  # optax: the maximum of the corrected v
                state["v_max"] = v_hat = np.maximum(state.get("v_max", 0.0), v_hat)
            root = np.sqrt(v_hat + o.eps) if self.eps_inside else np.sqrt(v_hat + o.eps_root) + o.eps
            new = theta - o.lr * m_hat / root
        elif o.name == "rmsprop":
            state["v"] = o.alpha * state.get("v", o.initial_scale) + (1 - o.alpha) * g * g
            correction = 1 - o.alpha**t if o.bias_correction else 1.0
            variance = state["v"] / correction
            if o.centered:
                state["c"] = o.alpha * state.get("c", 0.0) + (1 - o.alpha) * g
                variance = variance - (state["c"] / correction) ** 2
            direction = g / self._root(o, variance)
            if o.momentum:
                state["b"] = o.momentum * state.get("b", 0.0) + direction
                direction = direction + o.momentum * state["b"] if o.nesterov else state["b"]
            new = theta - o.lr * direction
        else:
            state["s"] = state.get("s", o.initial_accumulator_value) + g * g
            lr = o.lr / (1 + (t - 1) * o.lr_decay)
            new = theta - lr * np.where(state["s"] > 0, g / self._root(o, state["s"]), 0.0)
        if self.decay_after and o.name != "adamw":
            new = new - o.lr * o.weight_decay * new
        return new


class NumpyOptaxOptimizers(NumpyOptimizers):
    name = "numpy optimizers (optax)"
    convention = "optax"


class NoBiasCorrection(NumpyOptimizers):
    name = "adam without bias correction"
    correction_shift = None


class BiasCorrectionOffByOne(NumpyOptimizers):
    name = "bias correction one step off"
    correction_shift = 1


class EpsInsideTheRoot(NumpyOptimizers):
    name = "eps inside the root"
    eps_inside = True


class DecayWithoutLr(NumpyOptimizers):
    name = "adamw decay not times lr"
    decay_times_lr = False


class BufferFromZero(NumpyOptimizers):
    name = "momentum buffer from zero"
    first_buffer_is_g = False


class DecayAfterTheStep(NumpyOptimizers):
    name = "weight decay after the step"
    decay_after = True


OPTIMIZER_VARIANT_ADAPTERS = {
    "no bias correction": NoBiasCorrection,
    "bias correction one step off": BiasCorrectionOffByOne,
    "eps on the wrong side of the root": EpsInsideTheRoot,
    "AdamW's decay not multiplied by lr": DecayWithoutLr,
    "the momentum buffer started at zero": BufferFromZero,
    "weight decay applied after the step": DecayAfterTheStep,
}
