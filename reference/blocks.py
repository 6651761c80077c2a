"""Elementwise arithmetic on large arrays, block by block (speed).

An update (``reference.optimizer_rules``, plain gradient descent) is a few
NumPy operations, each a pass over the whole parameter array with a new
temporary per pass. At widths of 1024, an array is 8 MiB: each pass goes to
memory and back, and Adam's update cost as much as the forward and backward
pass. Here the arrays are cut into blocks of ``BLOCK`` entries, small enough
for a block's operands and temporaries to stay in a core's cache, and every
operation runs on one block before the next block starts.

Every entry goes through the same operations as on the whole array, so the
results are those of one call on the whole arrays, bit for bit
(``tests/test_reference_blocks.py``). The blocks run one after the other on
the calling thread (threads measured no faster here: NumPy's loops would
share the cores with the GIL and with OpenBLAS's own threads). A rule's
intermediate values may go into ``scratch`` arrays, reused from call to
call, instead of a new temporary per operation.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np

#: Entries per block: 128 KiB of float64, so that a block's operands and temporaries stay in a core's L2 cache.
BLOCK = 1 << 14
#: Arrays below this many entries are computed whole: cutting them costs more than it saves.
THRESHOLD = 4 * BLOCK
#: Entries of each scratch array kept per thread (1 MiB for two): scratch for a larger array is new.
SCRATCH = 4 * BLOCK

Arrays = Mapping[str, np.ndarray | None]

_SCRATCH = threading.local()  # per thread: each thread's rules get their own arrays


def scratch(like: np.ndarray, count: int = 2) -> list[np.ndarray]:
    """Return ``count`` distinct arrays of ``like``'s shape, float64, for a rule's intermediate values.

    Up to ``SCRATCH`` entries (a block, or an array computed whole), they
    are views of buffers kept on the calling thread and handed out again on
    its next call (speed: no allocation, and a block's temporaries stay in
    cache): use them within the call, and never return one or keep it.
    Larger ones are new.
    """
    if like.size > SCRATCH:
        return [np.empty(like.shape) for _ in range(count)]
    buffers = getattr(_SCRATCH, "buffers", [])
    if len(buffers) < count:
        buffers = _SCRATCH.buffers = buffers + [np.empty(SCRATCH) for _ in range(count - len(buffers))]
    return [buffer[: like.size].reshape(like.shape) for buffer in buffers[:count]]


def each_block(function: Callable[..., None], arrays: Sequence[np.ndarray], size: int) -> None:
    """Call ``function(*views)`` on each block of ``arrays`` (flat, ``size`` entries each)."""
    for start in range(0, size, BLOCK):
        function(*(array[start : start + BLOCK] for array in arrays))


def in_place(function: Callable[..., None], *arrays: np.ndarray) -> None:
    """Call ``function(*arrays)``, which writes into its arguments entry by entry, by blocks where they are large."""
    size = arrays[0].size
    if size < THRESHOLD or not all(array.flags.c_contiguous and array.size == size for array in arrays):
        function(*arrays)
        return
    each_block(function, [array.reshape(-1) for array in arrays], size)


Rule = Callable[[Arrays, Mapping[str, np.ndarray]], Arrays]


def blockwise(rule: Rule, inputs: Arrays, out: Arrays | None = None) -> dict[str, np.ndarray]:
    """Return ``rule(inputs, {})``, computed block by block where the arrays are large.

    ``rule(arrays, into)`` maps arrays of one shape to arrays of that shape,
    entry by entry, without writing into ``arrays``; it may write a result
    into ``into[name]`` where given (the block's own output). An input it
    returns as it is (the same object) is returned whole; None inputs are
    passed as they are. ``out`` names arrays that the results may be written
    into instead of new ones, an input among them (each block is read before
    it is written): a hint, taken for large arrays only; use what is returned.
    """
    present = [array for array in inputs.values() if array is not None]
    shape, size, dtype = present[0].shape, present[0].size, np.result_type(*present)
    if size < THRESHOLD:  # whole, into the arrays of ``out`` that can hold the results
        into = {name: target for name, target in (out or {}).items()
                if target is not None and target.shape == shape and target.dtype == dtype}
        return dict(rule(inputs, into))
    names = list(inputs)
    flat = [None if inputs[name] is None else np.ravel(inputs[name]) for name in names]
    views = {name: None if array is None else array[:1] for name, array in zip(names, flat)}
    probe = rule(views, {})  # the first entry alone, into new arrays: the outputs' dtypes, which inputs come back
    kept = {name for name, value in probe.items() if value is not None and value is views.get(name)}
    targets = {}
    for name, value in probe.items():
        if value is None or name in kept:
            continue
        target = None if out is None else out.get(name)
        fits = target is not None and target.shape == shape and target.dtype == value.dtype
        targets[name] = target if fits and target.flags.c_contiguous else np.empty(shape, dtype=value.dtype)
    operands = [array for array in flat if array is not None]
    given, outputs = [name for name in names if inputs[name] is not None], list(targets)
    absent = {name: None for name in names if inputs[name] is None}
    count = len(operands)

    def block(*blocks: np.ndarray) -> None:
        into = dict(zip(outputs, blocks[count:]))
        values = rule({**absent, **dict(zip(given, blocks[:count]))}, into)
        for name, result in into.items():
            if values[name] is not result:
                result[...] = values[name]

    destinations = [targets[name].reshape(-1) for name in outputs]
    each_block(block, operands + destinations, size)
    return {name: inputs[name] if name in kept else None if value is None else targets[name]
            for name, value in probe.items()}
