"""Hypothesis strategies: networks, parameters, data, learning rates and schedules.

Every draw is labelled. Elements are bounded and finite; the bounds keep
float32 far from overflow while still reaching saturated sigmoid and tanh
units (a layer scale of 4 drives |z| past 20). Shrinking goes towards the
smallest network: depth 1, width 1, identity, mse, few samples.

Why the arrays do not come from ``hypothesis.extra.numpy.arrays``
------------------------------------------------------------------
Without ``fill=``, ``hnp.arrays`` generates sparsely: one fill value repeated
and a few entries drawn. Over 200 derandomized ``cases()`` the median weight
matrix with >= 9 entries had 4% distinct values, and 94% had fewer than half
distinct. A nearly constant ``W`` makes every hidden unit identical, and that
hides the very bugs this suite exists for: a permuted, transposed or
mis-indexed gradient equals the right one when all rows are equal. Drawing
every element (``fill=st.nothing()``) fixes that but costs about 4.5 ms a case,
more than the three-way gradient check itself; the suite aims at >= 150
checked cases a second.

So the values of a case come from ``np.random.default_rng(seed)``, uniform in
each array's bounds, for one drawn ``seed``: every entry distinct (almost
surely), bounded, finite and reproducible from Hypothesis's choices. A case is
about twenty choices instead of hundreds, and Hypothesis's cost per choice
(~20 us) and per example (~0.25 ms) is now most of its ~0.9 ms (was ~4.2 ms);
all live rows of W are >= 90% distinct. Hypothesis still chooses, and shrinks,
what matters for backprop:

- **edge values** at up to ``MAX_EDGES`` drawn positions of the case's float
  arrays (any of W, b, x, y): exact 0.0, both bounds (+-scale for a layer's W
  and b, +-2 for x and mse targets, 0 and 1 for bce targets) and tiny
  magnitudes (1e-8 of the bound: far from 0, yet normal in float32, so no
  subnormal enters); see ``UNIT_EDGES`` and ``PROBABILITY_EDGES``;
- **dead units**: rows of W (and b) exactly zero, so z is exactly 0 and relu's
  convention relu'(0) = 0 decides the gradient;
- **hard bce targets**: exactly 0.0 or 1.0 everywhere, as in classification;
- the structure: depth, widths, activations, loss, reduction, bias, per-layer
  scales, batch size, learning rate, schedule.

Shrinking takes the network towards depth 1 and width 1, the edge list towards
empty and the dead units towards none. The values themselves do not shrink
towards simple numbers: a smaller seed is just other random values, so a
shrunk repro carries full-precision floats (which the repro snippet prints
exactly). Strategy objects
are built once (at module level, or cached on their bounds), not per draw, so
Hypothesis validates each one once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from hypothesis import strategies as st

from reference.conventions import ACTIVATIONS, LOSSES, REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from reference.network import Network, Params
from reference.training import batch_schedule

MAX_DEPTH = 5
MAX_WIDTH = 16
MAX_SAMPLES = 8
#: Weights are drawn in [-1, 1] and scaled per layer; 4 saturates sigmoid and tanh.
LAYER_SCALES = (0.25, 1.0, 4.0)
#: bce's output layer stays smaller, so most draws keep sigmoid(z_L) unsaturated.
BCE_OUTPUT_SCALES = (0.25, 0.5, 1.0)
#: Training draws smaller weights so that a few steps of gradient descent stay bounded.
TRAINING_SCALES = (0.25, 1.0)
#: Inputs x, and mse targets, lie in [-INPUT_BOUND, INPUT_BOUND].
INPUT_BOUND = 2.0
#: A tiny magnitude, relative to an array's bound: far from 0, normal even in float32.
TINY = 1e-8
#: Edge values of an array in [-1, 1] (scaled by its bound), simplest first: shrinking goes to 0.0.
UNIT_EDGES = (0.0, 1.0, -1.0, TINY, -TINY)
#: Edge values of bce targets in [0, 1], simplest first.
PROBABILITY_EDGES = (0.0, 1.0, 0.5, TINY, 1.0 - TINY)
#: One edge code's first digit picks the value from either tuple, so both have this many.
EDGES_PER_ARRAY = len(UNIT_EDGES)
assert len(PROBABILITY_EDGES) == EDGES_PER_ARRAY
#: At most this many entries of a case are set to edge values.
MAX_EDGES = 3


@dataclass
class Case:
    """One drawn problem: a network, params, a batch, and for training a schedule."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float = 0.1
    batches: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class _Slot:
    """One array of a case to fill: its shape, bounds and edge values.

    Floats are uniform in [low, high); ``integers`` (class labels, hard bce
    targets) are uniform in [low, high], stored as ``dtype``, with no edges.
    """

    shape: tuple[int, ...]
    low: float
    high: float
    edges: tuple[float, ...] = ()
    integers: bool = False
    dtype: type = np.float64

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def _symmetric(shape: tuple[int, ...], bound: float) -> _Slot:
    """Return a slot of floats in [-bound, bound] whose edges are UNIT_EDGES scaled by ``bound``."""
    return _Slot(shape, -bound, bound, tuple(bound * edge for edge in UNIT_EDGES))


# Strategies are built once: a freshly built strategy is validated on its first draw.
_SEEDS = st.integers(0, 2**32 - 1)
_BOOLEANS = st.booleans()
_LOSSES = st.sampled_from(LOSSES)
_ACTIVATIONS = st.sampled_from(ACTIVATIONS)
_REDUCTIONS = st.sampled_from(REDUCTIONS)
_LEARNING_RATES = st.floats(1e-3, 0.5, allow_nan=False, allow_infinity=False)
_TRAINING_LEARNING_RATES = st.floats(1e-3, 0.1, allow_nan=False, allow_infinity=False)


@cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@cache
def _sampled(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@cache
def _edge_placements(n_slots: int, largest: int) -> st.SearchStrategy[list[int]]:
    """Return lists of edge codes for ``n_slots`` arrays of at most ``largest`` entries (see ``_place_edge``)."""
    return st.lists(_integers(0, EDGES_PER_ARRAY * n_slots * largest - 1), max_size=MAX_EDGES)


def _place_edge(code: int, slots: list[_Slot], arrays: list[np.ndarray]) -> None:
    """Set one entry to an edge value; ``code`` holds the digits (edge, array, position).

    One integer an edge, not a tuple of three, keeps an edge to one choice.
    It shrinks towards the first edge value (0.0) in the first entry of the
    first array; the array digit comes before the position so that every array
    (x and y as well as the large weight matrices) gets its share of edges.
    """
    code, edge = divmod(code, EDGES_PER_ARRAY)
    code, which = divmod(code, len(slots))
    arrays[which].flat[code % slots[which].size] = slots[which].edges[edge]


@cache
def _batch_sizes(n_samples: int) -> st.SearchStrategy[int]:
    """Return batch sizes in [2, n_samples) that leave a partial last batch."""
    return st.sampled_from([size for size in range(2, n_samples) if n_samples % size != 0])


def _fill(draw: st.DrawFn, slots: list[_Slot]) -> tuple[list[np.ndarray], np.random.Generator]:
    """Return one array per slot, uniform from a drawn seed with edge values at drawn positions, and the generator."""
    rng = np.random.default_rng(draw(_SEEDS, label="values seed"))
    arrays = [
        rng.integers(int(slot.low), int(slot.high), slot.shape, endpoint=True).astype(slot.dtype)
        if slot.integers
        else rng.uniform(slot.low, slot.high, slot.shape)
        for slot in slots
    ]
    with_edges = [(slot, array) for slot, array in zip(slots, arrays) if slot.edges]
    if with_edges:
        edge_slots, edge_arrays = [slot for slot, _ in with_edges], [array for _, array in with_edges]
        placements = _edge_placements(len(edge_slots), max(slot.size for slot in edge_slots))
        for code in draw(placements, label="edge values"):
            _place_edge(code, edge_slots, edge_arrays)
    return arrays, rng


def _draw_target_slot(draw: st.DrawFn, network: Network, n_samples: int) -> _Slot:
    """Return the slot of targets valid for the loss: floats, probabilities in [0, 1], or class labels.

    bce's targets are either hard labels, exactly 0.0 or 1.0 as in
    classification, or soft probabilities with PROBABILITY_EDGES.
    """
    n_out = network.sizes[-1]
    if network.loss == "cross_entropy":
        return _Slot((n_samples,), 0, n_out - 1, integers=True, dtype=np.int64)
    if network.loss == "bce":
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
        last_bce = network.loss == "bce" and layer == network.depth
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
    sizes.append(draw(_integers(2 if loss == "cross_entropy" else 1, max_width), label=f"n{depth}"))
    # The output activation is drawn even where the loss fixes it: skipping that
    # choice would make bce's sequence shorter, so Hypothesis would shrink to bce.
    activations = [draw(_ACTIVATIONS, label=f"activation{layer}") for layer in range(1, depth + 1)]
    if REQUIRED_OUTPUT_ACTIVATION[loss] is not None:
        activations[-1] = REQUIRED_OUTPUT_ACTIVATION[loss]
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
