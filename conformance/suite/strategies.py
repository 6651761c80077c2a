"""Hypothesis strategies: networks, parameters, data, learning rates and schedules.

Every draw is labelled. Elements are bounded and finite; the bounds keep
float32 far from overflow while still reaching saturated sigmoid and tanh
units (a layer scale of 4 drives |z| past 20). Shrinking goes towards the
smallest network: depth 1, width 1, identity, mse, few samples.

The values of a case come from one drawn seed, with edge values, dead units
and hard bce targets placed by Hypothesis: ``suite.values`` says why.

Shrinking takes the network towards depth 1 and width 1, the edge list towards
empty and the dead units towards none. The values themselves do not shrink
towards simple numbers: a smaller seed is just other random values, so a
shrunk repro carries full-precision floats (which the repro snippet prints
exactly). Strategy objects
are built once (at module level, or cached on their bounds), not per draw, so
Hypothesis validates each one once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import strategies as st

from backprop_conformance.reference.conventions import REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.specs import base
from backprop_conformance.reference.training import batch_schedule
from backprop_conformance.suite.case import (
    ACTIVATION_SPECS,
    BCE_OUTPUT_SCALES,
    INPUT_BOUND,
    LAYER_SCALES,
    LOSS_SPECS,
    TRAINING_SCALES,
    Case,
)
from backprop_conformance.suite.values import (
    _SEEDS,
    PROBABILITY_EDGES,
    _fill,
    _integers,
    _Slot,
    _symmetric,
)

MAX_DEPTH = 5
MAX_WIDTH = 16
MAX_SAMPLES = 8


_BOOLEANS = st.booleans()
_LOSSES = st.sampled_from(LOSS_SPECS)
_ACTIVATIONS = st.sampled_from(ACTIVATION_SPECS)
_REDUCTIONS = st.sampled_from(REDUCTIONS)
_LEARNING_RATES = st.floats(1e-3, 0.5, allow_nan=False, allow_infinity=False)
_TRAINING_LEARNING_RATES = st.floats(1e-3, 0.1, allow_nan=False, allow_infinity=False)


@cache
def _sampled(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@cache
def _batch_sizes(n_samples: int) -> st.SearchStrategy[int]:
    """Return batch sizes in [2, n_samples) that leave a partial last batch."""
    return st.sampled_from([size for size in range(2, n_samples) if n_samples % size != 0])


def _draw_target_slot(draw: st.DrawFn, network: Network, n_samples: int) -> _Slot:
    """Return the slot of targets valid for the loss: floats, probabilities in [0, 1], or class labels.

    bce's targets are either hard labels, exactly 0.0 or 1.0 as in
    classification, or soft probabilities with PROBABILITY_EDGES.
    """
    n_out = network.sizes[-1]
    if network.loss_name == "cross_entropy":
        return _Slot((n_samples,), 0, n_out - 1, integers=True, dtype=np.int64)
    if network.loss_name in ("bce", "bce_with_logits"):
        if draw(_BOOLEANS, label="bce targets are hard 0/1 labels"):
            return _Slot((n_samples, n_out), 0, 1, integers=True)
        return _Slot((n_samples, n_out), 0.0, 1.0, PROBABILITY_EDGES)
    return _symmetric((n_samples, n_out), INPUT_BOUND)


@dataclass(frozen=True)
class _Layers:
    """What Hypothesis draws for a network's layers: a weight scale each, and which have dead units."""

    scales: tuple[float, ...]
    #: Bit ``l - 1`` set: layer ``l`` has dead units.
    dead_units: int

    def has_dead_units(self, layer: int) -> bool:
        return bool((self.dead_units >> (layer - 1)) & 1)


def _draw_layers(draw: st.DrawFn, network: Network, scales: tuple[float, ...]) -> _Layers:
    """Draw every layer's scale from ``scales`` (bce's output layer: BCE_OUTPUT_SCALES), and the dead layers.

    Which layers have dead units is one choice (a bit mask, shrinking to none);
    which units are dead is left to the values' generator (``_dead_units``).
    """
    drawn = []
    for layer in range(1, network.depth + 1):
        last_bce = network.loss_name == "bce" and layer == network.depth
        drawn.append(draw(_sampled(BCE_OUTPUT_SCALES if last_bce else scales), label=f"scale{layer}"))
    dead_units = draw(_integers(0, 2**network.depth - 1), label="layers with dead units (bit mask)")
    return _Layers(tuple(drawn), dead_units)


def _dead_units(rng: np.random.Generator, n_out: int) -> np.ndarray:
    """Return a mask of dead units: each with probability 1/2, and at least one."""
    dead = rng.random(n_out) < 0.5
    dead[rng.integers(n_out)] = True
    return dead


def _parameter_slots(network: Network, layers: _Layers) -> list[_Slot]:
    slots = []
    for layer, scale in enumerate(layers.scales, start=1):
        n_out, n_in = network.sizes[layer], network.sizes[layer - 1]
        slots.append(_symmetric((n_out, n_in), scale))
        if network.bias:
            slots.append(_symmetric((n_out,), scale))
    return slots


def _assemble_params(
    network: Network, layers: _Layers, arrays: list[np.ndarray], rng: np.random.Generator
) -> Params:
    """Pair the filled arrays into (W, b) per layer and zero the dead units' rows."""
    values = iter(arrays)
    params: Params = []
    for layer in range(1, network.depth + 1):
        weight = next(values)
        bias = next(values) if network.bias else None
        if layers.has_dead_units(layer):
            # Dead units: rows of W (and b) exactly zero give z exactly 0, where
            # relu's kink convention relu'(0) = 0 decides the gradient.
            dead = _dead_units(rng, network.sizes[layer])
            weight[dead] = 0.0
            if bias is not None:
                bias[dead] = 0.0
        params.append((weight, bias))
    return params


def _draw_batch(
    draw: st.DrawFn, network: Network, scales: tuple[float, ...], n_samples: int
) -> tuple[Params, np.ndarray, np.ndarray]:
    """Draw params, inputs x of ``n_samples`` rows and targets y, all from one values seed."""
    layers = _draw_layers(draw, network, scales)
    slots = [
        *_parameter_slots(network, layers),
        _symmetric((n_samples, network.sizes[0]), INPUT_BOUND),
        _draw_target_slot(draw, network, n_samples),
    ]
    arrays, rng = _fill(draw, slots)
    return _assemble_params(network, layers, arrays[:-2], rng), arrays[-2], arrays[-1]


def _draw_network(draw: st.DrawFn, max_depth: int, max_width: int) -> Network:
    depth = draw(_integers(1, max_depth), label="depth")
    loss = draw(_LOSSES, label="loss")
    sizes = [draw(_integers(1, max_width), label=f"n{layer}") for layer in range(depth)]
    sizes.append(draw(_integers(2 if base(loss) == "cross_entropy" else 1, max_width), label=f"n{depth}"))
    # The output activation is drawn even where the loss fixes it: skipping that
    # choice would make bce's sequence shorter, so Hypothesis would shrink to bce.
    activations = [draw(_ACTIVATIONS, label=f"activation{layer}") for layer in range(1, depth + 1)]
    if REQUIRED_OUTPUT_ACTIVATION[base(loss)] is not None:
        activations[-1] = REQUIRED_OUTPUT_ACTIVATION[base(loss)]
    bias = draw(_BOOLEANS, label="bias")
    reduction = draw(_REDUCTIONS, label="reduction")
    return Network(tuple(sizes), tuple(activations), loss, bias=bias, reduction=reduction)


@st.composite
def networks(draw: st.DrawFn, max_depth: int = MAX_DEPTH, max_width: int = MAX_WIDTH) -> Network:
    """Draw a valid Network: depth 1..5, widths 1..16, a loss with a compatible output layer."""
    return _draw_network(draw, max_depth, max_width)


@st.composite
def parameters(draw: st.DrawFn, network: Network, scales: tuple[float, ...] = LAYER_SCALES) -> Params:
    """Draw bounded params with a per-layer scale from ``scales``, edge values and dead units included."""
    layers = _draw_layers(draw, network, scales)
    arrays, rng = _fill(draw, _parameter_slots(network, layers))
    return _assemble_params(network, layers, arrays, rng)


@st.composite
def targets(draw: st.DrawFn, network: Network, n_samples: int) -> np.ndarray:
    """Draw targets valid for the loss: floats, probabilities in [0, 1], or class labels."""
    arrays, _ = _fill(draw, [_draw_target_slot(draw, network, n_samples)])
    return arrays[0]


@st.composite
def cases(draw: st.DrawFn, network: Network | None = None, max_samples: int = MAX_SAMPLES) -> Case:
    """Draw a network (unless given), params, and one batch (x, y)."""
    if network is None:
        network = _draw_network(draw, MAX_DEPTH, MAX_WIDTH)
    m = draw(_integers(1, max_samples), label="m")
    params, x, y = _draw_batch(draw, network, LAYER_SCALES, m)
    return Case(network, params, x, y, learning_rate=draw(_LEARNING_RATES, label="learning_rate"))


def learning_rates() -> st.SearchStrategy[float]:
    """Learning rates in [0.001, 0.5]."""
    return _LEARNING_RATES


def _draw_schedule(draw: st.DrawFn, n_samples: int) -> list[np.ndarray]:
    batch_size = draw(_batch_sizes(n_samples), label="batch_size")
    epochs = draw(_integers(2, 3), label="epochs")
    seed = draw(_SEEDS, label="schedule_seed")
    return batch_schedule(n_samples, batch_size, epochs, seed=seed)


@st.composite
def schedules(draw: st.DrawFn, n_samples: int) -> list[np.ndarray]:
    """Draw a shuffled schedule of >= 2 epochs whose last batch per epoch is partial."""
    return _draw_schedule(draw, n_samples)


@st.composite
def training_cases(draw: st.DrawFn) -> Case:
    """Draw a case with 5..10 samples and a shuffled mini-batch schedule.

    Training stays in a stable regime (layer scales <= 1, learning rate <= 0.1)
    so that trajectories do not diverge; see ``MAX_TRAINING_MAGNITUDE``.
    """
    network = _draw_network(draw, max_depth=3, max_width=8)
    n_samples = draw(_integers(5, 10), label="n_samples")
    params, x, y = _draw_batch(draw, network, TRAINING_SCALES, n_samples)
    learning_rate = draw(_TRAINING_LEARNING_RATES, label="learning_rate")
    return Case(network, params, x, y, learning_rate=learning_rate, batches=_draw_schedule(draw, n_samples))
