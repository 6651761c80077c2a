"""Overflow in the reference: an error that names the step and the array, never a silent inf or NaN.

Inputs are finite (``reference.validation``), yet magnitudes can still
overflow float64: ``W = 1e308``, or a learning rate of 1e300. The public
functions compute under ``np.errstate(over="raise", invalid="raise",
divide="raise")`` (``raising``), which costs nothing on the way, and turn
NumPy's FloatingPointError into a ``ReferenceOverflow`` saying where: the
first non-finite array of the pass (``first_non_finite``), in the documents'
symbols (``z2``, ``a2``, ``J``, ``delta2``, ``dW2``, ``db2``), or the update.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from backprop_conformance.reference.network import Network, Params


class ReferenceOverflow(FloatingPointError):
    """A value of the reference's computation is not finite in float64; the message says which."""


def _first_bad(array: np.ndarray) -> str | None:
    """Return ``"[i, j] = inf"`` for the first non-finite entry of ``array``, or None."""
    bad = ~np.isfinite(array)
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0]) if np.ndim(array) else ()
    return f"{list(index) if index else ''} = {float(np.asarray(array)[index])!r}".lstrip()


def first_non_finite(network: Network, params: Params, x: np.ndarray, y: np.ndarray | None) -> str:
    """Return which array of the pass is first not finite: z and a per layer, then J, then the backward pass.

    The pass is recomputed with overflow ignored; with ``y`` None, the forward pass alone.
    """
    from backprop_conformance.reference.backprop import _backprop, _forward  # the pass that overflowed

    with np.errstate(all="ignore"):
        if y is None:
            zs, activations = _forward(network, params, x)
            value, activations = 0.0, activations[1:]
        else:
            value, arrays = _backprop(network, params, x, y)
            zs, activations = arrays.zs, arrays.activations
    for layer in range(1, network.depth + 1):
        for name, array in ((f"z{layer}", zs[layer - 1]), (f"a{layer}", activations[layer - 1])):
            where = _first_bad(array)
            if where is not None:
                magnitude = max(float(np.max(np.abs(params[layer - 1][0]))), float(np.max(np.abs(x))))
                return f"{name}{where} in the forward pass (inputs and W up to {magnitude:.3g})"
    if y is None:
        return "an intermediate value of the forward pass (every stored array is finite)"
    if not np.isfinite(value):
        return f"the loss J = {value!r}"
    for layer in range(network.depth, 0, -1):
        d_weight, d_bias = arrays.grads[layer - 1]
        delta = arrays.deltas[layer - 1] if layer < network.depth else None
        for name, array in ((f"delta{layer}", delta), (f"dW{layer}", d_weight), (f"db{layer}", d_bias)):
            where = None if array is None else _first_bad(array)
            if where is not None:
                return f"{name}{where} in the backward pass"
    return "an intermediate value (every stored array is finite)"


class UpdateOverflow(FloatingPointError):
    """theta - learning_rate * dJ/dtheta overflowed for one parameter array; ``name`` says which."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@contextmanager
def raising(function: str, network: Network, params: Params, x: np.ndarray, y: np.ndarray | None,
            step: str = "", learning_rate: float | None = None) -> Iterator[None]:
    """Run the body with float64 overflow raising, and raise a ReferenceOverflow that says where.

    ``params``, ``x`` and ``y`` are those the body starts from (they must
    still be intact when the forward or backward pass overflows, as they are:
    the pass writes only its own arrays).
    """
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield
    except UpdateOverflow as error:
        raise ReferenceOverflow(
            f"{function}: {step}the update {error.name} - learning_rate * d{error.name} is not finite in float64 "
            f"(learning_rate={learning_rate!r})"
        ) from None
    except FloatingPointError:
        where = first_non_finite(network, params, x, y)
        raise ReferenceOverflow(f"{function}: {step}float64 overflows: {where}") from None
