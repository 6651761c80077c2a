"""Assertion helpers that say what differed, where, by how much, and how to reproduce it.

Each helper checks shape, then dtype, then values against an element-wise
allowance from ``suite.tolerances``, and fails with a message such as::

    torch float32: gradient W2 differs at [0, 2]: adapter = 0.4132, reference = 0.4125,
    |diff| 7.0e-04 > allowed 2.1e-06 (343x) in network 3-4-1 sigmoid/identity mse mean, bias

A ``ConformanceError`` carries the failing ``Measurement``, so that
``backprop check`` can tell failures of the same cause apart from others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.network import Network, Params


class ConformanceError(AssertionError):
    """An adapter's result is outside what the tolerance model allows; ``measurement`` says which.

    ``diagnosis``: the variants of ``suite.variants`` the result matches, if any.
    """

    def __init__(self, message: str, measurement: Measurement | None = None, diagnosis: Any = None) -> None:
        super().__init__(message)
        self.measurement = measurement
        self.diagnosis = diagnosis


def _format_index(index: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, index))}]" if index else ""


@dataclass(frozen=True)
class Measurement:
    """How one adapter array compares with the reference.

    ``ratio`` is the worst |diff| / allowed over the entries (<= 1 conforms),
    ``max_abs_error`` the largest |diff|, ``relative_error`` the norm-wise
    ||diff|| / ||reference||, ``message`` what went wrong (None if nothing).
    """

    adapter: str
    quantity: str
    name: str
    ratio: float
    max_abs_error: float
    relative_error: float
    allowed: float
    message: str | None = None
    #: The network in one line (``Network.describe``).
    network: str = ""
    #: The dtype the adapter declares (what float arrays were checked against).
    dtype: str = ""
    #: What was compared, for a diagnosis to measure again (``suite.diagnosis``): the adapter's array and
    #: the allowance per entry (its largest value where the shapes differed).
    actual: Any = field(default=None, repr=False, compare=False)
    allowed_array: Any = field(default=None, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        """Return whether the array conforms."""
        return self.message is None


def measure(
    actual: Any,
    expected: np.ndarray,
    allowed: np.ndarray | float,
    *,
    adapter: str,
    dtype: str,
    quantity: str,
    name: str,
    network: Network,
) -> Measurement:
    """Return the Measurement of ``actual`` against ``expected`` within ``allowed`` per entry.

    Checks shape, then dtype, then finiteness, then values. ``quantity`` is
    what is compared (``"gradient"``, ``"loss"``, ...), ``name`` which array.
    """
    where = f"{adapter}: {quantity} {name}".rstrip()
    expected = np.asarray(expected, dtype=np.float64)
    allowance = np.asarray(allowed, dtype=np.float64)
    failed = {"adapter": adapter, "quantity": quantity, "name": name, "ratio": math.inf,
              "max_abs_error": math.inf, "relative_error": math.inf, "allowed": 0.0, "network": network.describe(),
              "dtype": dtype, "actual": actual, "allowed_array": np.float64(allowance.max(initial=0.0))}
    if actual is None:
        return Measurement(**failed, message=f"{where} is None; expected shape {expected.shape}")
    actual = np.asarray(actual)
    if actual.shape != expected.shape:
        return Measurement(**failed, message=f"{where} has shape {actual.shape}, the reference {expected.shape}")
    if actual.dtype.kind == "f" and actual.dtype != np.dtype(dtype):
        return Measurement(**failed, message=f"{where} has dtype {actual.dtype}; the adapter declares {dtype}")
    if not np.isfinite(actual).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(actual))[0])
        return Measurement(**failed, message=f"{where} is not finite at {_format_index(index)}: {actual[index]!r}")
    difference = np.abs(actual.astype(np.float64) - expected)
    allowed = np.broadcast_to(np.asarray(allowed, dtype=np.float64), expected.shape)
    if np.isnan(allowed).any():  # a bug of the tolerance model: NaN would let any difference pass
        index = tuple(int(i) for i in np.argwhere(np.isnan(allowed))[0])
        raise ValueError(f"{where}: the tolerance model allows NaN at {_format_index(index) or '(scalar)'} "
                         f"in network {network.describe()}; no verdict can be given")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(difference == 0, 0.0, difference / allowed)
    worst = float(ratio.max(initial=0.0))
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(ratio)), ratio.shape)) if ratio.size else ()
    scale = float(np.linalg.norm(expected))
    relative = float(np.linalg.norm(difference)) / scale if scale > 0 else float(np.linalg.norm(difference))
    message = None
    if worst > 1.0:
        message = (
            f"{where} differs at {_format_index(index) or '(scalar)'}: "
            f"adapter = {float(actual[index]):.10g}, reference = {float(expected[index]):.10g}, "
            f"|diff| {float(difference[index]):.2e} > allowed {float(allowed[index]):.2e} "
            f"({worst:.3g}x) in network {network.describe()}"
        )
    return Measurement(
        adapter=adapter,
        quantity=quantity,
        name=name,
        ratio=worst,
        max_abs_error=float(difference.max(initial=0.0)),
        relative_error=relative,
        allowed=float(allowed[index]) if ratio.size else 0.0,
        message=message,
        network=network.describe(),
        dtype=dtype,
        actual=actual,
        allowed_array=allowed,
    )


def assert_close(actual: Any, expected: np.ndarray, allowed: np.ndarray | float, **context: Any) -> Measurement:
    """Return ``measure(...)``'s Measurement, raising ConformanceError if it fails."""
    __tracebackhide__ = True
    result = measure(actual, expected, allowed, **context)
    if not result.passed:
        raise ConformanceError(result.message, result)
    return result


def measure_params(
    actual: Params,
    expected: Params,
    allowed: Params,
    *,
    adapter: str,
    dtype: str,
    quantity: str,
    network: Network,
) -> list[Measurement]:
    """Return one Measurement per (W, b) array of ``actual`` against ``expected``."""
    context = {"adapter": adapter, "dtype": dtype, "quantity": quantity, "network": network}
    if len(actual) != len(expected):
        return [measure(None, np.zeros(len(expected)), 0.0, name="layers", **context)]
    results = []
    for layer, (pair, wanted, allowance) in enumerate(zip(actual, expected, allowed), start=1):
        for slot, kind in enumerate(("W", "b")):
            name = parameter_name(layer, kind)
            if wanted[slot] is None:
                if pair[slot] is not None:
                    results.append(
                        measure(None, np.zeros(0), 0.0, name=f"{name} (should be None: no biases)", **context)
                    )
                continue
            results.append(measure(pair[slot], wanted[slot], allowance[slot], name=name, **context))
    return results


def require(measurements: list[Measurement], explanation: str | None = None, diagnosis: Any = None) -> float:
    """Raise ConformanceError for the worst failing measurement, ending with ``explanation``; return the worst ratio."""
    __tracebackhide__ = True
    failing = [result for result in measurements if not result.passed]
    if failing:
        worst = max(failing, key=lambda result: result.ratio)
        others = f" (and {len(failing) - 1} more arrays)" if len(failing) > 1 else ""
        ending = f"; {explanation}" if explanation else ""
        raise ConformanceError(f"{worst.message}{others}{ending}", worst, diagnosis)
    return max((result.ratio for result in measurements), default=0.0)
