"""Hypothesis strategies: networks, parameters, data, learning rates and schedules.

Every draw is labelled. Elements are bounded and finite; the bounds keep
float32 far from overflow while still reaching saturated sigmoid and tanh
units (a layer scale of 4 drives |z| past 20). Shrinking goes towards the
smallest network: depth 1, width 1, identity, mse, few samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reference.conventions import ACTIVATIONS, LOSSES, REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from reference.network import Network, Params

MAX_DEPTH = 5
MAX_WIDTH = 16
MAX_SAMPLES = 8
#: Weights are drawn in [-1, 1] and scaled per layer; 4 saturates sigmoid and tanh.
LAYER_SCALES = (0.25, 1.0, 4.0)
#: bce's output layer stays smaller, so most draws keep sigmoid(z_L) unsaturated.
BCE_OUTPUT_SCALES = (0.25, 0.5, 1.0)
#: Training draws smaller weights so that a few steps of gradient descent stay bounded.
TRAINING_SCALES = (0.25, 1.0)

_UNIT = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
_INPUT = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
_PROBABILITY = st.floats(0.0, 1.0, allow_nan=False, allow_subnormal=False, width=64)


@dataclass
class Case:
    """One drawn problem: a network, params, a batch, and for training a schedule."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float = 0.1
    batches: list[np.ndarray] = field(default_factory=list)


@st.composite
def networks(draw: st.DrawFn, max_depth: int = MAX_DEPTH, max_width: int = MAX_WIDTH) -> Network:
    """Draw a valid Network: depth 1..5, widths 1..16, a loss with a compatible output layer."""
    depth = draw(st.integers(1, max_depth), label="depth")
    loss = draw(st.sampled_from(LOSSES), label="loss")
    sizes = draw(st.lists(st.integers(1, max_width), min_size=depth + 1, max_size=depth + 1), label="sizes")
    if loss == "cross_entropy" and sizes[-1] < 2:
        sizes[-1] = 2
    activations = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=depth, max_size=depth), label="activations")
    required = REQUIRED_OUTPUT_ACTIVATION[loss]
    if required is not None:
        activations[-1] = required
    bias = draw(st.booleans(), label="bias")
    reduction = draw(st.sampled_from(REDUCTIONS), label="reduction")
    return Network(tuple(sizes), tuple(activations), loss, bias=bias, reduction=reduction)


@st.composite
def parameters(draw: st.DrawFn, network: Network, scales: tuple[float, ...] = LAYER_SCALES) -> Params:
    """Draw bounded params with a per-layer scale from ``scales``, exact zeros and dead units included."""
    params: Params = []
    for layer in range(1, network.depth + 1):
        n_out, n_in = network.sizes[layer], network.sizes[layer - 1]
        last_bce = network.loss == "bce" and layer == network.depth
        scale = draw(st.sampled_from(BCE_OUTPUT_SCALES if last_bce else scales), label=f"scale{layer}")
        weight = draw(hnp.arrays(np.float64, (n_out, n_in), elements=_UNIT), label=f"W{layer}") * scale
        bias = None
        if network.bias:
            bias = draw(hnp.arrays(np.float64, (n_out,), elements=_UNIT), label=f"b{layer}") * scale
        # Dead units: rows of W (and b) exactly zero give z exactly 0, where
        # relu's kink convention relu'(0) = 0 decides the gradient.
        if draw(st.booleans(), label=f"dead units in layer {layer}"):
            dead = draw(hnp.arrays(np.bool_, (n_out,)), label=f"dead{layer}")
            weight[dead] = 0.0
            if bias is not None:
                bias[dead] = 0.0
        params.append((weight, bias))
    return params


@st.composite
def targets(draw: st.DrawFn, network: Network, n_samples: int) -> np.ndarray:
    """Draw targets valid for the loss: floats, probabilities in [0, 1], or class labels."""
    n_out = network.sizes[-1]
    if network.loss == "cross_entropy":
        return draw(hnp.arrays(np.int64, (n_samples,), elements=st.integers(0, n_out - 1)), label="y")
    elements = _PROBABILITY if network.loss == "bce" else _INPUT
    return draw(hnp.arrays(np.float64, (n_samples, n_out), elements=elements), label="y")


@st.composite
def cases(draw: st.DrawFn, network: Network | None = None, max_samples: int = MAX_SAMPLES) -> Case:
    """Draw a network (unless given), params, and one batch (x, y)."""
    if network is None:
        network = draw(networks(), label="network")
    params = draw(parameters(network), label="params")
    m = draw(st.integers(1, max_samples), label="m")
    x = draw(hnp.arrays(np.float64, (m, network.sizes[0]), elements=_INPUT), label="x")
    y = draw(targets(network, m), label="y")
    return Case(network, params, x, y, learning_rate=draw(learning_rates(), label="learning_rate"))


def learning_rates() -> st.SearchStrategy[float]:
    """Learning rates in [0.001, 0.5]."""
    return st.floats(1e-3, 0.5, allow_nan=False, allow_infinity=False)


@st.composite
def schedules(draw: st.DrawFn, n_samples: int) -> list[np.ndarray]:
    """Draw a shuffled schedule of >= 2 epochs whose last batch per epoch is partial."""
    from reference.training import batch_schedule

    batch_size = draw(st.integers(2, n_samples - 1).filter(lambda b: n_samples % b != 0), label="batch_size")
    epochs = draw(st.integers(2, 3), label="epochs")
    seed = draw(st.integers(0, 2**32 - 1), label="schedule_seed")
    return batch_schedule(n_samples, batch_size, epochs, seed=seed)


@st.composite
def training_cases(draw: st.DrawFn) -> Case:
    """Draw a case with 5..10 samples and a shuffled mini-batch schedule.

    Training stays in a stable regime (layer scales <= 1, learning rate <= 0.1)
    so that trajectories do not diverge; see ``MAX_TRAINING_MAGNITUDE``.
    """
    network = draw(networks(max_depth=3, max_width=8), label="network")
    params = draw(parameters(network, scales=TRAINING_SCALES), label="params")
    n_samples = draw(st.integers(5, 10), label="n_samples")
    x = draw(hnp.arrays(np.float64, (n_samples, network.sizes[0]), elements=_INPUT), label="x")
    y = draw(targets(network, n_samples), label="y")
    return Case(
        network,
        params,
        x,
        y,
        learning_rate=draw(st.floats(1e-3, 0.1), label="learning_rate"),
        batches=draw(schedules(n_samples), label="batches"),
    )
