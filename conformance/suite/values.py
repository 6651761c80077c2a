"""How a drawn case gets its values: every array filled from one drawn seed, with edge values placed.

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

"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import strategies as st

#: A tiny magnitude, relative to an array's bound: far from 0, normal even in float32.
TINY = 1e-8
#: Edge values of an array in [-1, 1] (scaled by its bound), simplest first: shrinking goes to 0.0.
UNIT_EDGES = (0.0, 1.0, -1.0, TINY, -TINY)
#: Edge values of bce targets in [0, 1], simplest first.
PROBABILITY_EDGES = (0.0, 1.0, 0.5, TINY, 1.0 - TINY)
#: One edge code's first digit picks the value from either tuple, so both have this many.
EDGES_PER_ARRAY = len(UNIT_EDGES)
#: At most this many entries of a case are set to edge values.
MAX_EDGES = 3


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


@cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


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
