"""An implementation in any language, as a subprocess speaking JSON lines: ``backprop check --command "CMD"``.

The process is started once (on the first call) and answers one JSON
request per line on its stdin with one JSON response per line on its
stdout; what it writes to stderr is kept for error messages. The protocol
(the README's "Checking code in any language" has it in full):

``{"method": "describe"}``
    -> ``{"name": ..., "dtype": "float64" | "float32", "methods": [...]}``
``{"method": "loss_and_gradients", "network": {...}, "params": [[W, b], ...], "x": ..., "y": ...}``
    -> ``{"loss": ..., "grads": [[dW, db], ...]}``
``sgd_step`` (adds ``learning_rate``) -> ``{"params": ...}``;
``train`` (adds ``batches``, ``learning_rate``) -> ``{"losses": [...], "params": ...}``; a process whose
    ``describe`` lists ``"optimizers": ["torch"]`` (or ``"optax"``) also gets ``"optimizer"``, the spec's
    ``Optimizer.to_json()``, in ``train`` requests with an optimizer;
``forward`` -> ``{"output": [[...]]}``, if ``describe`` lists it.
Any request may get ``{"error": "..."}`` or ``{"unsupported": "reason"}``.

The network is ``{"sizes", "activations", "loss", "bias", "reduction"}``
(``Network.to_json()``); ``W`` and ``dW`` are nested lists of
shape (n_out, n_in), ``b`` and ``db`` lists or null. Numbers are JSON
numbers, written with Python's ``repr``: 17 significant digits at most,
and always enough to round-trip. A process that exits, or closes its
stdout, fails the call with its exit status and the end of its stderr; one
that does not answer runs into the per-call timeout (``adapters.boundary``),
after which it is killed.
"""

from __future__ import annotations

import atexit
import json
import shlex
import subprocess
import tempfile
from typing import Any

import numpy as np

from backprop_conformance.adapters.protocol import AdapterError, Trajectory, Unsupported
from backprop_conformance.reference.network import Network, Params, params_json
from backprop_conformance.reference.optimizers import OPTIMIZER_CONVENTIONS, Optimizer

PROTOCOL_METHODS = ("forward", "loss_and_gradients", "sgd_step", "train")


class ProcessFailed(RuntimeError):
    """The process exited, answered something that is not a response, or answered an error."""


def _params_from_json(value: Any, field: str) -> Params:
    """Return [W, b] pairs of a response as float64 arrays, or raise ProcessFailed saying what is wrong."""
    if not isinstance(value, list) or not all(isinstance(pair, list) and len(pair) == 2 for pair in value):
        raise ProcessFailed(f"its {field!r} is not a list of [W, b] pairs: {json.dumps(value)[:200]}")
    try:
        return [(np.array(w, dtype=np.float64), None if b is None else np.array(b, dtype=np.float64))
                for w, b in value]
    except (TypeError, ValueError) as error:
        raise ProcessFailed(f"its {field!r} holds something that is not an array of numbers ({error})") from None


class CommandProcess:
    """One subprocess and its JSON-lines conversation."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.stderr = tempfile.TemporaryFile(mode="w+")
        try:
            self.process = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self.stderr, text=True, bufsize=1)
        except OSError as error:
            raise AdapterError(f"command {command!r} cannot be started: {error.strerror or error}") from None
        atexit.register(self.close)

    def _tail(self) -> str:
        self.stderr.seek(0)
        lines = self.stderr.read().strip().splitlines()
        return f"; its stderr ends: {' | '.join(lines[-3:])}" if lines else ""

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and return the response, or raise ProcessFailed saying what the process did."""
        try:
            try:
                self.process.stdin.write(json.dumps(request, allow_nan=False) + "\n")
                self.process.stdin.flush()
            except OSError:  # it has exited (a broken pipe): said below, with its status
                line = ""
            else:
                line = self.process.stdout.readline()
        except BaseException:  # a timeout or Ctrl-C mid-conversation: the process's state is unknown
            self.close()
            raise
        if not line:
            status = self.process.poll()
            if status is None:
                self.process.kill()
                status = self.process.wait()
            raise ProcessFailed(f"the process exited (status {status}) instead of answering{self._tail()}")
        try:
            response = json.loads(line)
        except json.JSONDecodeError as error:
            raise ProcessFailed(f"it answered a line that is not JSON ({error}): {line.strip()[:120]!r}") from None
        if not isinstance(response, dict):
            raise ProcessFailed(f"it answered {type(response).__name__}, not a JSON object: {line.strip()[:120]!r}")
        if "unsupported" in response:
            raise Unsupported(str(response["unsupported"]))
        if "error" in response:
            raise ProcessFailed(f"it answered an error: {response['error']}")
        return response

    def close(self) -> None:
        """End the process: close its stdin, and kill it if it does not exit in a second."""
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=1)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class CommandAdapter:
    """An adapter whose methods are requests to a subprocess (see the module docstring)."""

    def __init__(self, command: str) -> None:
        if not isinstance(command, str) or not command.strip():
            raise AdapterError(f"command={command!r} is not a command line")
        self.command = command
        self._process: CommandProcess | None = None
        try:
            described = self._ask({"method": "describe"})
        except (ProcessFailed, Unsupported) as error:
            raise AdapterError(f"command {command!r}: describe failed: {error}") from None
        name, dtype, methods = described.get("name"), described.get("dtype", "float64"), described.get("methods")
        if not isinstance(name, str) or not name:
            raise AdapterError(f"command {command!r}: describe answered no 'name': {described!r:.200}")
        if not isinstance(methods, list) or "loss_and_gradients" not in methods:
            raise AdapterError(f"command {command!r}: describe's 'methods' must list loss_and_gradients: {methods!r}")
        optimizers = described.get("optimizers", [])
        if not isinstance(optimizers, list) or not set(optimizers) <= set(OPTIMIZER_CONVENTIONS):
            raise AdapterError(f"command {command!r}: describe's 'optimizers' must list conventions of "
                               f"{', '.join(OPTIMIZER_CONVENTIONS)}: {optimizers!r:.100}")
        self.name, self.dtype = name, dtype
        self.methods = tuple(method for method in methods if method in PROTOCOL_METHODS)
        if optimizers:  # its train takes an optimizer in these conventions (adapters.optimizer_support)
            self.optimizer_conventions = tuple(optimizers)

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if self._process is None or self._process.process.poll() is not None:
            self._process = CommandProcess(self.command)
        return self._process.ask(request)

    def __getattr__(self, method: str) -> Any:
        """Offer exactly the methods ``describe`` listed (the protocol then derives the others)."""
        if method in PROTOCOL_METHODS and method in self.__dict__.get("methods", ()):
            if method == "train" and "optimizer_conventions" in self.__dict__:
                return self._train_with
            return getattr(self, f"_{method}")
        raise AttributeError(method)

    def _case(self, method: str, network: Network, params: Params, x: np.ndarray, **more: Any) -> dict[str, Any]:
        return {"method": method, "network": network.to_json(), "params": params_json(params),
                "x": np.asarray(x).tolist(), **more}

    def _answer(self, request: dict[str, Any], *fields: str) -> list[Any]:
        response = self._ask(request)
        missing = [name for name in fields if name not in response]
        if missing:
            raise ProcessFailed(f"its answer to {request['method']} has no {' or '.join(map(repr, missing))}: "
                                f"{json.dumps(response)[:200]}")
        return [response[name] for name in fields]

    def _forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        (output,) = self._answer(self._case("forward", network, params, x), "output")
        return np.array(output, dtype=np.float64)

    def _loss_and_gradients(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray) -> tuple:
        request = self._case("loss_and_gradients", network, params, x, y=np.asarray(y).tolist())
        loss, grads = self._answer(request, "loss", "grads")
        return loss, _params_from_json(grads, "grads")

    def _sgd_step(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> Params:
        request = self._case("sgd_step", network, params, x, y=np.asarray(y).tolist(), learning_rate=learning_rate)
        (params,) = self._answer(request, "params")
        return _params_from_json(params, "params")

    def _train(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, batches: list,
               learning_rate: float) -> Trajectory:
        return self._train_with(network, params, x, y, batches, learning_rate)

    def _train_with(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, batches: list,
                    learning_rate: float, optimizer: Optimizer | None = None) -> Trajectory:
        more = {} if optimizer is None else {"optimizer": optimizer.to_json()}
        request = self._case("train", network, params, x, y=np.asarray(y).tolist(),
                             batches=[np.asarray(batch).tolist() for batch in batches], learning_rate=learning_rate,
                             **more)
        losses, params = self._answer(request, "losses", "params")
        return Trajectory(np.array(losses, dtype=np.float64), _params_from_json(params, "params"))

    def __repr__(self) -> str:
        return f"CommandAdapter({self.command!r})"
