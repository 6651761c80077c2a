"""The boundary between the suite and an implementation: its own copies in, checked results out, a timeout.

``protocol.Adapter`` passes every call through here:

* **Copies.** The implementation gets its own copies of params, data and
  schedule, so that nothing it does reaches the caller's arrays; afterwards
  the copies are compared with the originals, and an implementation that
  wrote into its inputs fails: "modified its input params[0].W in place".
* **Timeout.** A call that does not return within the adapter's timeout
  fails, naming the adapter and the method. In the main thread SIGALRM
  interrupts it (Python code and blocking calls; C code that never returns
  to the interpreter cannot be interrupted in-process); elsewhere the call
  runs in a daemon thread that is abandoned. An adapter that timed out is
  not called again in that run, so that shrinking does not wait again.
* **Results.** A loss must be one real number, gradients and params a list
  of (W, b) pairs of real arrays, one per layer: complex values, numeric
  strings, arrays for a loss, None, tuples of the wrong length and torch
  tensors that still require grad are refused with one message naming the
  adapter, the method and what was wrong.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: The per-call timeout when none is given (seconds): room for a framework's first compilation.
DEFAULT_TIMEOUT = 60.0


class AdapterCallError(RuntimeError):
    """A method of the implementation failed; the message names the adapter, the method and what went wrong."""


class AdapterTimeout(AdapterCallError):
    """A method of the implementation did not return within the timeout."""


class AdapterResultError(AdapterCallError):
    """A method returned something the protocol does not accept."""


class AdapterModifiedInput(AdapterCallError):
    """A method wrote into the arrays it was given."""


# -- copies in, and what changed ---------------------------------------------------------------------


def _copy(value: Any) -> Any:
    """Return a copy of an argument: arrays copied, lists and tuples rebuilt, anything else (specs) as is."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(item) for item in value)
    return value


def copies(arguments: Sequence[Any]) -> list[Any]:
    """Return a copy of every argument for the implementation to keep."""
    return [_copy(argument) for argument in arguments]


def _same(original: Any, passed: Any) -> bool:
    """Return whether ``passed`` still equals ``original``: arrays entry by entry, lists item by item."""
    if isinstance(original, np.ndarray):
        if not isinstance(passed, np.ndarray) or passed.shape != original.shape or passed.dtype != original.dtype:
            return False
        # Bit for bit (a NaN equals itself, -0.0 is not 0.0): memcmp of small arrays is microseconds.
        return passed.tobytes() == original.tobytes()
    if isinstance(original, (list, tuple)):
        return isinstance(passed, (list, tuple)) and len(passed) == len(original) and all(
            _same(left, right) for left, right in zip(original, passed)
        )
    return True


def _parts(name: str, value: Any) -> list[tuple[str, Any]]:
    """Return the named parts of an argument: ``params[0].W``, ``params[0].b``, ``batches[3]``, or itself."""
    if name == "params" and isinstance(value, (list, tuple)):
        return [(f"params[{index}].{'Wb'[slot]}", array) for index, pair in enumerate(value)
                for slot, array in enumerate(pair if isinstance(pair, (list, tuple)) else (pair, None))]
    if name == "batches" and isinstance(value, (list, tuple)):
        return [(f"batches[{index}]", batch) for index, batch in enumerate(value)]
    return [(name, value)]


def modified_input(names: Sequence[str], originals: Sequence[Any], passed: Sequence[Any]) -> str | None:
    """Return the name of the first input the implementation changed (``params[0].W``, ``x``), or None."""
    for name, original, copy in zip(names, originals, passed):
        if _same(original, copy):
            continue
        mine, theirs = _parts(name, original), _parts(name, copy)
        if len(mine) != len(theirs):
            return name
        return next((part for (part, left), (_, right) in zip(mine, theirs) if not _same(left, right)), name)
    return None


# -- the timeout -------------------------------------------------------------------------------------


class CallTimedOut(Exception):
    """``call_with_timeout``'s call did not return in time (its own class: an adapter may raise TimeoutError)."""


class _Alarm(BaseException):
    """Raised into the running call by SIGALRM; a BaseException, so that ``except Exception`` lets it through."""


def call_with_timeout(function: Callable[..., Any], arguments: Sequence[Any], seconds: float | None) -> Any:
    """Return ``function(*arguments)``, or raise CallTimedOut once ``seconds`` have passed."""
    if seconds is None:
        return function(*arguments)
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def alarm(signum: int, frame: Any) -> None:
            raise _Alarm

        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            return function(*arguments)
        except _Alarm:
            raise CallTimedOut from None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function(*arguments)
        except BaseException as error:  # handed to the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=run, name="backprop-conformance adapter call", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise CallTimedOut
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- results out -------------------------------------------------------------------------------------


def _requires_grad(value: Any) -> bool:
    return bool(getattr(value, "requires_grad", False))


def real_array(value: Any, what: str) -> np.ndarray:
    """Return ``value`` as a NumPy array of real numbers, or raise ValueError saying what ``what`` is instead."""
    if _requires_grad(value):
        raise ValueError(f"{what} is a tensor that requires grad; return it detached (.detach().cpu().numpy())")
    if value is None:
        raise ValueError(f"{what} is None")
    if isinstance(value, (str, bytes)):
        raise ValueError(f"{what} is a string ({value!r:.40}), not numbers")
    try:
        array = np.asarray(value)
    except Exception as error:
        raise ValueError(f"{what} ({type(value).__name__}) is not convertible to a NumPy array: {error}") from None
    if array.dtype.kind == "c":
        raise ValueError(f"{what} is complex ({array.dtype}): its imaginary part would be dropped")
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{what} has dtype {array.dtype}, not real numbers")
    return array


def real_number(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is one real number (a 0-d array counts), else raise ValueError."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{what} is a bool ({value!r}), not a number")
    array = real_array(value, what)
    if array.ndim:
        raise ValueError(f"{what} is an array of shape {array.shape}; return one number (reduce it)")
    return float(array)


def pairs(value: Any, what: str, depth: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Return ``value`` as ``depth`` (W, b) pairs of real arrays (b may be None), or raise ValueError."""
    if isinstance(value, (str, bytes, np.ndarray)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} is a {type(value).__name__}, not a list of (W, b) pairs, one per layer")
    if len(value) != depth:
        raise ValueError(f"{what} has {len(value)} layers; the network has {depth}")
    checked = []
    for index, pair in enumerate(value):
        if isinstance(pair, (str, bytes, np.ndarray)) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise ValueError(f"{what}[{index}] is not a (W, b) pair")
        weight = real_array(pair[0], f"{what}[{index}].W")
        bias = None if pair[1] is None else real_array(pair[1], f"{what}[{index}].b")
        checked.append((weight, bias))
    return checked


def loss_and_grads_pair(result: Any) -> None:
    """Raise ValueError unless ``result`` is the pair (loss, grads)."""
    if isinstance(result, (str, bytes, np.ndarray)) or not isinstance(result, Sequence):
        raise ValueError(f"returned a {type(result).__name__}; it must return the pair (loss, grads)")
    if len(result) != 2:
        raise ValueError(f"returned {len(result)} values; it must return the pair (loss, grads)")


def trajectory_losses(result: Any, iterations: int) -> np.ndarray:
    """Return a trajectory's losses as float64, after checking it has losses and params and the losses are 1-d.

    How many there are is left to the comparison (a wrong count is a
    conformance failure with a diagnosis, such as a dropped partial batch).
    """
    if not (hasattr(result, "losses") and hasattr(result, "params")):
        raise ValueError(f"returned a {type(result).__name__} without .losses and .params (a Trajectory)")
    losses = real_array(result.losses, "the trajectory's losses")
    if losses.ndim != 1:
        raise ValueError(f"the trajectory's losses have shape {losses.shape}; one per batch is ({iterations},)")
    return losses.astype(np.float64)
