"""Programs behind ``--command``, for the tests: the reference, and processes that misbehave.

``python -m tests.protocol_programs MODE`` answers the JSON-lines protocol
of ``adapters.command_adapter`` on stdin and stdout:

- ``reference``: the reference itself, every method (the protocol's cost
  next to the in-process reference adapter);
- ``no-sigmoid``: the reference, answering ``unsupported`` for sigmoid;
- ``crash``: describes itself, then exits with status 3 at the first call,
  writing a last word to stderr;
- ``silent``: describes itself, then reads requests and never answers;
- ``garbage``: answers calls with a line that is not JSON;
- ``error``: answers calls with ``{"error": ...}``;
- ``wrong-shape``: answers gradients of the transposed shape;
- ``no-describe``: exits before answering anything;
- ``nameless``: describes itself without a name;
- ``optimizers``: the reference, and its train takes optimizers of both conventions.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from backprop_conformance import reference
from backprop_conformance.reference import Network
from backprop_conformance.reference.network import params_json


def _params(value: list) -> list:
    return [(np.array(w, dtype=np.float64), None if b is None else np.array(b, dtype=np.float64)) for w, b in value]


def _reference_answer(request: dict, mode: str) -> dict:
    network = Network(**{**request["network"], "sizes": tuple(request["network"]["sizes"]),
                         "activations": tuple(request["network"]["activations"])})
    if mode == "no-sigmoid" and "sigmoid" in network.activations:
        return {"unsupported": "no sigmoid here"}
    params, x = _params(request["params"]), np.array(request["x"], dtype=np.float64)
    method = request["method"]
    if method == "forward":
        return {"output": reference.forward(network, params, x).tolist()}
    y = np.array(request["y"])
    if method == "loss_and_gradients":
        loss, grads = reference.loss_and_gradients(network, params, x, y)
        if mode == "wrong-shape":
            grads = [(w.T, b) for w, b in grads]
        return {"loss": loss, "grads": params_json(grads)}
    if method == "sgd_step":
        return {"params": params_json(reference.sgd_step(network, params, x, y, request["learning_rate"]))}
    if method == "train":
        batches = [np.array(batch, dtype=np.int64) for batch in request["batches"]]
        optimizer = request.get("optimizer")
        rule = request["learning_rate"] if optimizer is None else reference.Optimizer(**optimizer)
        trajectory = reference.train(network, params, x, y, batches, rule)
        return {"losses": trajectory.losses.tolist(), "params": params_json(trajectory.params)}
    return {"error": f"unknown method {method!r}"}


def main(mode: str) -> None:
    if mode == "no-describe":
        print("this program does not speak the protocol", file=sys.stderr)
        raise SystemExit(1)
    methods = ["forward", "loss_and_gradients", "sgd_step", "train"]
    for line in sys.stdin:
        request = json.loads(line)
        if request["method"] == "describe":
            answer: dict | str = {"name": f"python {mode}", "dtype": "float64", "methods": methods}
            if mode == "nameless":
                del answer["name"]
            if mode == "optimizers":
                answer["optimizers"] = ["torch", "optax"]
        elif mode == "crash":
            print("segmentation fault (pretend)", file=sys.stderr)
            raise SystemExit(3)
        elif mode == "silent":
            time.sleep(3600)
            continue
        elif mode == "garbage":
            answer = "loss = 0.5"
        elif mode == "error":
            answer = {"error": "the GPU is busy"}
        else:
            answer = _reference_answer(request, mode)
        print(answer if isinstance(answer, str) else json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
