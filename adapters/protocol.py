"""The adapter protocol: what an implementation provides to be checked.

An implementation is any object with

``name: str``
    how reports and messages call it;
``dtype: str`` (optional)
    ``"float32"`` or ``"float64"``; one that declares none is judged as float64;
``loss_and_gradients(network, params, x, y) -> (loss, grads)`` (required);
``forward(network, params, x) -> output`` (optional);
``sgd_step(network, params, x, y, learning_rate) -> params`` (optional:
    derived from ``loss_and_gradients`` when absent);
``train(network, params, x, y, batches, learning_rate) -> trajectory``
    (optional: derived from ``sgd_step`` when absent), the trajectory having
    ``.losses`` and ``.params``.

Everything crosses the boundary as NumPy arrays in the reference's layout
(``reference.conventions``): ``params`` a list of ``(W, b)`` pairs with ``W``
of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)`` or None. The suite
hands over float64 arrays; the implementation casts to its own dtype inside.

Growth: a new capability (momentum, Adam, ...) arrives as a new *optional*
method taking an optimizer spec, e.g. ``optimizer_step(network, params, x, y,
optimizer, state)``. ``Adapter.supports`` reports what an implementation
offers, and the suite skips, with a reason, what it does not, so an adapter
written against today's protocol stays valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from backprop_conformance.reference.network import Network, Params

DTYPES = ("float32", "float64")
REQUIRED_METHODS = ("loss_and_gradients",)
OPTIONAL_METHODS = ("forward", "sgd_step", "train")


class AdapterError(ValueError):
    """An implementation does not satisfy the protocol, or cannot be loaded."""


class AdapterUnavailable(RuntimeError):
    """An adapter cannot run here (its framework or device is missing); the suite skips it."""


class AdapterCallError(RuntimeError):
    """A method of the implementation raised; the message names the adapter, the method and the error."""


@runtime_checkable
class AdapterProtocol(Protocol):
    """The one method every implementation must have (see the module docstring)."""

    name: str

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]: ...


@dataclass(frozen=True)
class Trajectory:
    """A derived trajectory: per-iteration losses (before each update) and final params."""

    losses: np.ndarray
    params: Params


def _as_numpy_params(params: Any, field: str) -> Params:
    """Return ``params`` as a list of (W, b) NumPy pairs, or raise naming ``field``."""
    try:
        return [(np.asarray(weight), None if bias is None else np.asarray(bias)) for weight, bias in params]
    except (TypeError, ValueError) as error:
        raise AdapterError(f"{field} is not a list of (W, b) pairs: {error}") from None


class Adapter:
    """An implementation behind the full protocol, with the optional methods derived.

    ``Adapter(implementation)`` checks the required parts once; the suite only
    ever talks to this wrapper.
    """

    def __init__(self, implementation: Any) -> None:
        name = getattr(implementation, "name", None)
        if not isinstance(name, str) or not name:
            raise AdapterError(
                f"{type(implementation).__name__} has no 'name' string attribute, which the protocol requires"
            )
        for method in REQUIRED_METHODS:
            if not callable(getattr(implementation, method, None)):
                raise AdapterError(f"adapter {name!r} has no method {method}(network, params, x, y)")
        dtype = getattr(implementation, "dtype", None) or "float64"
        dtype = str(np.dtype(dtype)) if dtype in (np.float32, np.float64) else dtype
        if dtype not in DTYPES:
            raise AdapterError(f"adapter {name!r} declares dtype={dtype!r}; use one of {DTYPES}")
        self.implementation = implementation
        self.name: str = name
        self.dtype: str = dtype
        #: How to load this adapter again (set by load_adapter), for repro snippets.
        self.spec: str = name

    @property
    def label(self) -> str:
        """Return ``"name dtype"``, how reports name this adapter."""
        return self.name if self.name.endswith(self.dtype) else f"{self.name} {self.dtype}"

    def supports(self, method: str) -> bool:
        """Return whether the implementation itself provides ``method``."""
        return callable(getattr(self.implementation, method, None))

    def _call(self, method: str, *arguments: Any) -> Any:
        """Return the implementation's ``method(*arguments)``; what it raises becomes an AdapterCallError."""
        try:
            return getattr(self.implementation, method)(*arguments)
        except AdapterUnavailable:
            raise
        except Exception as error:
            raise AdapterCallError(f"{self.label}: {method}() raised {type(error).__name__}: {error}") from error

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return the implementation's (loss, grads) as a float and NumPy arrays."""
        value, grads = self._call("loss_and_gradients", network, params, x, y)
        return float(value), _as_numpy_params(grads, f"{self.label} grads")

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the implementation's output; AdapterUnavailable if it has no forward."""
        if not self.supports("forward"):
            raise AdapterUnavailable(f"adapter {self.label!r} has no forward(network, params, x)")
        return np.asarray(self._call("forward", network, params, x))

    def sgd_step(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> Params:
        """Return params after one gradient-descent step, the implementation's or derived."""
        if self.supports("sgd_step"):
            return _as_numpy_params(
                self._call("sgd_step", network, params, x, y, learning_rate), f"{self.label} sgd_step"
            )
        _, grads = self.loss_and_gradients(network, params, x, y)
        return self._update(params, grads, learning_rate)

    def _update(self, params: Params, grads: Params, learning_rate: float) -> Params:
        """Return theta - learning_rate * grad, computed in the adapter's dtype."""
        dtype = np.dtype(self.dtype)
        rate = dtype.type(learning_rate)
        return [
            (
                weight.astype(dtype) - rate * d_weight.astype(dtype),
                None if bias is None else bias.astype(dtype) - rate * d_bias.astype(dtype),
            )
            for (weight, bias), (d_weight, d_bias) in zip(params, grads)
        ]

    def train(
        self,
        network: Network,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        batches: list[np.ndarray],
        learning_rate: float,
    ) -> Trajectory:
        """Return the training trajectory, the implementation's or derived from sgd_step."""
        if self.supports("train"):
            result = self._call("train", network, params, x, y, batches, learning_rate)
            return Trajectory(
                losses=np.asarray(result.losses, dtype=np.float64),
                params=_as_numpy_params(result.params, f"{self.label} train params"),
            )
        losses = np.empty(len(batches))
        for iteration, batch in enumerate(batches):
            losses[iteration], grads = self.loss_and_gradients(network, params, x[batch], y[batch])
            if self.supports("sgd_step"):
                params = self.sgd_step(network, params, x[batch], y[batch], learning_rate)
            else:  # one backward pass serves both the loss and the update
                params = self._update(params, grads, learning_rate)
        return Trajectory(losses=losses, params=params)

    def __repr__(self) -> str:
        return f"Adapter({self.label!r})"
