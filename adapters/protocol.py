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
    ``.losses`` and ``.params`` (``Trajectory`` is one);
``unsupported(network, method) -> str | None`` (optional): why the
    implementation cannot run ``method`` on ``network`` (sigmoid, bce,
    per-layer activations, biases, sum reduction, train...), or None when it
    can; any method may also raise ``Unsupported(reason)``;
``conventions`` (optional): names of ``suite.variants`` the implementation
    follows by design (torch's ``"torch BCELoss clamp"``); a failure that
    matches one is reported as a known divergence, not as a failure.

Everything crosses the boundary as NumPy arrays in the reference's layout
(``reference.conventions``): ``params`` a list of ``(W, b)`` pairs with ``W``
of shape ``(n_out, n_in)`` and ``b`` of shape ``(n_out,)`` or None. The suite
hands over float64 arrays; the implementation casts to its own dtype inside.
``Adapter`` passes every call through ``adapters.boundary``: the
implementation gets copies it may not write into, a per-call timeout, and
its results are checked before anything is compared.

Optimizers: ``train`` may take an optional ``optimizer`` (a
``reference.Optimizer``; ``learning_rate`` is then its ``lr``); one whose
train does not is SGD-only, and ``optimizer_conventions`` says which
conventions one that does implements (``adapters.optimizer_support``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from backprop_conformance.adapters.boundary import (
    DEFAULT_TIMEOUT,
    AdapterCallError,
    AdapterModifiedInput,
    AdapterResultError,
    AdapterTimeout,
    CallTimedOut,
    call_with_timeout,
    copies,
    loss_and_grads_pair,
    modified_input,
    pairs,
    real_array,
    real_number,
    trajectory_losses,
)
from backprop_conformance.adapters.optimizer_support import optimizer_refusal
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizers import Optimizer

__all__ = [
    "DTYPES",
    "Adapter",
    "AdapterCallError",
    "AdapterError",
    "AdapterModifiedInput",
    "AdapterProtocol",
    "AdapterResultError",
    "AdapterTimeout",
    "AdapterUnavailable",
    "Trajectory",
    "Unsupported",
]

DTYPES = ("float32", "float64")
REQUIRED_METHODS = ("loss_and_gradients",)
OPTIONAL_METHODS = ("forward", "sgd_step", "train")


class AdapterError(ValueError):
    """An implementation does not satisfy the protocol, or cannot be loaded."""


class AdapterUnavailable(RuntimeError):
    """An adapter cannot run here (its framework or device is missing); the suite skips it."""


class Unsupported(Exception):
    """An implementation cannot do this network or method; raise it with the reason, from any method.

    The suite then does not judge the case: a drawn case is rejected and
    counted, an explicit one skipped, both reported as "not applicable" with
    the reason.
    """


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


#: The parameter names of each method, as the protocol passes its arguments (for messages).
ARGUMENT_NAMES = {
    "forward": ("network", "params", "x"),
    "loss_and_gradients": ("network", "params", "x", "y"),
    "sgd_step": ("network", "params", "x", "y", "learning_rate"),
    "train": ("network", "params", "x", "y", "batches", "learning_rate"),
}


class Adapter:
    """An implementation behind the full protocol, with the optional methods derived.

    ``Adapter(implementation, timeout=60)`` checks the required parts once;
    the suite only ever talks to this wrapper. Every call goes through
    ``adapters.boundary``: the implementation gets copies of its inputs
    (and fails if it writes into them), must return within ``timeout``
    seconds (None: no limit), and what it returns is checked and converted
    to NumPy.
    """

    def __init__(self, implementation: Any, timeout: float | None = DEFAULT_TIMEOUT) -> None:
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
        #: Seconds a call may take (None: no limit); the suite's --timeout sets it.
        self.timeout: float | None = timeout
        #: How to load this adapter again (set by load_adapter), for repro snippets.
        self.spec: str = name
        self._timed_out: str | None = None

    @property
    def label(self) -> str:
        """Return ``"name dtype"``, how reports name this adapter."""
        return self.name if self.name.endswith(self.dtype) else f"{self.name} {self.dtype}"

    def supports(self, method: str) -> bool:
        """Return whether the implementation itself provides ``method``."""
        return callable(getattr(self.implementation, method, None))

    def unsupported(self, network: Network, method: str) -> str | None:
        """Return why the implementation cannot run ``method`` on ``network`` (its own answer), or None."""
        ask = getattr(self.implementation, "unsupported", None)
        if not callable(ask):
            return None
        try:
            reason = ask(network, method)
        except Exception as error:
            raise AdapterCallError(f"{self.label}: unsupported() raised {type(error).__name__}: {error}") from error
        if reason is not None and not isinstance(reason, str):
            raise AdapterResultError(f"{self.label}: unsupported() returned {reason!r:.60}; return a reason or None")
        return reason or None

    def _call(self, method: str, *arguments: Any, **keywords: Any) -> Any:
        """Return the implementation's ``method`` called on copies of ``arguments`` (and on ``keywords``,
        immutable specs), through the boundary."""
        if self._timed_out is not None:
            raise AdapterTimeout(self._timed_out)
        passed = copies(arguments)
        function = getattr(self.implementation, method)
        try:
            result = call_with_timeout(functools.partial(function, **keywords), passed, self.timeout)
        except (AdapterUnavailable, Unsupported):
            raise
        except CallTimedOut:
            self._timed_out = (
                f"{self.label}: {method}() did not return within {self.timeout:g} s (the per-call timeout, "
                "--timeout); the adapter is not called again in this run"
            )
            raise AdapterTimeout(self._timed_out) from None
        except Exception as error:
            raise AdapterCallError(f"{self.label}: {method}() raised {type(error).__name__}: {error}") from error
        changed = modified_input(ARGUMENT_NAMES[method], arguments, passed)
        if changed is not None:
            raise AdapterModifiedInput(f"{self.label}: {method}() modified its input {changed} in place")
        return result

    def _refuse_unsupported(self, network: Network, method: str) -> None:
        reason = self.unsupported(network, method)
        if reason is not None:
            raise Unsupported(reason)

    @property
    def conventions(self) -> tuple[str, ...]:
        """Return the names of the variants the implementation follows by design (``conventions``)."""
        declared = getattr(self.implementation, "conventions", ())
        if isinstance(declared, str) or not all(isinstance(name, str) for name in declared):
            raise AdapterError(f"adapter {self.label!r}: conventions={declared!r:.80} must be a list of names")
        return tuple(declared)

    def _checked(self, method: str, check: Any, *arguments: Any) -> Any:
        """Return ``check(*arguments)``, its ValueError turned into an AdapterResultError naming ``method``."""
        try:
            return check(*arguments)
        except ValueError as error:
            raise AdapterResultError(f"{self.label}: {method}(): {error}") from None

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return the implementation's (loss, grads) as a float and NumPy arrays."""
        self._refuse_unsupported(network, "loss_and_gradients")
        result = self._call("loss_and_gradients", network, params, x, y)
        self._checked("loss_and_gradients", loss_and_grads_pair, result)
        value = self._checked("loss_and_gradients", real_number, result[0], "the loss")
        return value, self._checked("loss_and_gradients", pairs, result[1], "the gradients", network.depth)

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the implementation's output; AdapterUnavailable if it has no forward."""
        if not self.supports("forward"):
            raise AdapterUnavailable(f"adapter {self.label!r} has no forward(network, params, x)")
        self._refuse_unsupported(network, "forward")
        return self._checked("forward", real_array, self._call("forward", network, params, x), "the output")

    def sgd_step(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> Params:
        """Return params after one gradient-descent step, the implementation's or derived."""
        self._refuse_unsupported(network, "sgd_step")
        if self.supports("sgd_step"):
            result = self._call("sgd_step", network, params, x, y, learning_rate)
            return self._checked("sgd_step", pairs, result, "the params", network.depth)
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

    def train(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, batches: list[np.ndarray],
              learning_rate: float, optimizer: Optimizer | None = None) -> Trajectory:
        """Return the training trajectory, the implementation's or derived from sgd_step; with an
        ``optimizer``, the implementation's, or Unsupported saying why it cannot."""
        self._refuse_unsupported(network, "train")
        if optimizer is not None:
            if learning_rate != optimizer.lr:
                raise ValueError(f"learning_rate={learning_rate!r} is not the optimizer's lr={optimizer.lr!r}")
            reason = self._checked("train", optimizer_refusal, self.implementation, optimizer)
            if reason is not None:
                raise Unsupported(reason)
        if self.supports("train"):
            more = {} if optimizer is None else {"optimizer": optimizer}
            result = self._call("train", network, params, x, y, batches, learning_rate, **more)
            losses = self._checked("train", trajectory_losses, result, len(batches))
            return Trajectory(losses, self._checked("train", pairs, result.params, "the params", network.depth))
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

