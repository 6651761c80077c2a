"""Adapters that misbehave: write into their inputs, hang, or return what the protocol does not accept.

Each is refused with one message naming the adapter, the method and what was
wrong; none can change what the suite or the report sees of another adapter.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.adapters import (
    Adapter,
    AdapterModifiedInput,
    AdapterResultError,
    AdapterTimeout,
    load_adapter,
)
from backprop_conformance.reference.seeds import example
from backprop_conformance.report.publish import generate

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = example("001")
ARGUMENTS = (DOCUMENT.network, DOCUMENT.params, DOCUMENT.x, DOCUMENT.y)


class InPlaceStep:
    """Writes the right new params into the caller's arrays, and returns them."""

    name = "in-place"

    def loss_and_gradients(self, network, params, x, y):
        return reference.loss_and_gradients(network, params, x, y)

    def sgd_step(self, network, params, x, y, learning_rate):
        for (weight, bias), (new_weight, new_bias) in zip(params, reference.sgd_step(network, params, x, y,
                                                                                       learning_rate)):
            weight[...] = new_weight
            if bias is not None:
                bias[...] = new_bias
        return params


class Sleeping:
    name = "sleeping"

    def loss_and_gradients(self, network, params, x, y):
        time.sleep(float(os.environ.get("SLEEP_SECONDS", "1000")))
        return reference.loss_and_gradients(network, params, x, y)


def _returning(result_of):
    """Return an adapter class whose loss_and_gradients returns ``result_of(loss, grads)``."""

    class Returning:
        name = "odd"

        def loss_and_gradients(self, network, params, x, y):
            value, grads = reference.loss_and_gradients(network, params, x, y)
            return result_of(value, grads)

    return Returning


def test_an_adapter_writing_into_its_inputs_fails_naming_the_array():
    adapter = Adapter(InPlaceStep())
    pristine = [(weight.copy(), bias.copy()) for weight, bias in DOCUMENT.params]
    with pytest.raises(AdapterModifiedInput, match=r"^in-place float64: sgd_step\(\) modified its input "
                                                    r"params\[0\]\.W in place$"):
        adapter.sgd_step(*ARGUMENTS, 0.1)
    assert all(np.array_equal(w, p) and np.array_equal(b, q) for (w, b), (p, q) in zip(DOCUMENT.params, pristine))


def test_an_in_place_adapter_cannot_corrupt_the_records_of_the_adapters_after_it(tmp_path):
    alone = generate(tmp_path / "alone", ["reference"], ["float64"], seed=0, examples=2)
    together = generate(tmp_path / "together", [f"{__name__}:InPlaceStep", "reference"], ["float64"], seed=0,
                        examples=2)
    def mine(document):
        return [{k: v for k, v in r.items()} for r in document["records"] if r["adapter"] == "reference"]

    assert mine(together) == mine(alone)
    failures = [r for r in together["records"] if r["adapter"].endswith("InPlaceStep") and r["quantity"] == "update"]
    assert failures and all("modified its input params[0].W in place" in r["message"] for r in failures)
    # Its repro shows the case as it was handed over, not as the adapter left it.
    snippet = next(r["repro"] for r in failures if r["network"] == "doc-001")
    assert "example('001')" in snippet


@pytest.mark.parametrize(
    ("result_of", "message"),
    [
        (lambda v, g: (v, [(w.astype(complex) * (1 + 1e-3j), b) for w, b in g]),
         r"the gradients\[0\]\.W is complex \(complex128\): its imaginary part would be dropped"),
        (lambda v, g: (str(v), g), r"the loss is a string \('0\.\d+'\), not numbers"),
        (lambda v, g: (np.array([v, v]), g), r"the loss is an array of shape \(2,\); return one number"),
        (lambda v, g: (None, g), r"the loss is None"),
        (lambda v, g: (v, g, "extra"), r"returned 3 values; it must return the pair \(loss, grads\)"),
        (lambda v, g: (v, g[:-1]), r"the gradients has 2 layers; the network has 3"),
        (lambda v, g: (v, None), r"the gradients is a NoneType, not a list of \(W, b\) pairs"),
        (lambda v, g: (True, g), r"the loss is a bool"),
    ],
    ids=["complex gradients", "numeric string", "array loss", "None loss", "three values", "missing layer",
         "None gradients", "bool loss"],
)
def test_results_the_protocol_does_not_accept_are_refused_naming_adapter_and_method(result_of, message):
    adapter = Adapter(_returning(result_of)())
    with pytest.raises(AdapterResultError, match=rf"^odd float64: loss_and_gradients\(\): {message}"):
        adapter.loss_and_gradients(*ARGUMENTS)


def test_torch_tensors_that_require_grad_are_refused():
    torch = pytest.importorskip("torch")

    def as_tensors(value, grads):
        tensor = torch.tensor(value, dtype=torch.float64, requires_grad=True)
        return tensor * 1.0, grads

    adapter = Adapter(_returning(as_tensors)())
    with pytest.raises(AdapterResultError, match=r"the loss is a tensor that requires grad; return it detached"):
        adapter.loss_and_gradients(*ARGUMENTS)


def test_a_call_that_does_not_return_times_out_naming_adapter_and_method(monkeypatch):
    monkeypatch.setenv("SLEEP_SECONDS", "30")
    adapter = Adapter(Sleeping(), timeout=0.5)
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match=r"^sleeping float64: loss_and_gradients\(\) did not return within "
                                             r"0\.5 s \(the per-call timeout, --timeout\)"):
        adapter.loss_and_gradients(*ARGUMENTS)
    assert time.monotonic() - started < 5
    # Not called again: shrinking, and the tests after, fail at once with the same message.
    started = time.monotonic()
    with pytest.raises(AdapterTimeout, match=r"did not return within 0\.5 s"):
        adapter.sgd_step(*ARGUMENTS, 0.1)
    assert time.monotonic() - started < 0.1


def test_the_timeout_also_works_outside_the_main_thread(monkeypatch):
    import threading

    monkeypatch.setenv("SLEEP_SECONDS", "3")
    adapter = Adapter(Sleeping(), timeout=0.3)
    caught: list[BaseException] = []
    worker = threading.Thread(target=lambda: _catch(caught, adapter.loss_and_gradients, *ARGUMENTS))
    worker.start()
    worker.join(10)
    assert caught and isinstance(caught[0], AdapterTimeout)


def _catch(caught: list, function, *arguments) -> None:
    try:
        function(*arguments)
    except BaseException as error:
        caught.append(error)


def _backprop(*arguments: str, **environment: str) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTHONPATH": str(ROOT)} | environment
    return subprocess.Popen([sys.executable, "-m", "backprop_conformance", *arguments], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_check_with_a_hanging_adapter_fails_with_the_timeout_and_ends():
    started = time.monotonic()
    process = _backprop("check", f"{__name__}:Sleeping", "--timeout", "1", "--max-examples", "3")
    out, error = process.communicate(timeout=300)
    assert process.returncode == 1, out + error
    assert "1 distinct failure(s)" in out
    assert "sleeping float64: loss_and_gradients() did not return within 1 s" in out
    assert time.monotonic() - started < 120


def test_pytest_has_the_timeout_option_too():
    process = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "backprop_conformance", "-q", "-p", "no:cacheprovider",
         "--adapter", f"{__name__}:Sleeping", "--conformance-timeout", "1", "--conformance-max-examples", "2",
         "-k", "test_gradients", "-p", "no:xdist"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={key: value for key, value in os.environ.items() if key != "CI"} | {"PYTHONPATH": str(ROOT)},
    )
    assert process.returncode == 1
    assert "did not return within 1 s" in process.stdout


def test_ctrl_c_ends_check_with_130():
    process = _backprop("check", f"{__name__}:Sleeping", "--timeout", "0")
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    out, error = process.communicate(timeout=120)
    assert process.returncode == 130, out + error


def test_ctrl_c_ends_report_with_130_keeping_the_previous_report_and_what_was_measured(tmp_path):
    out_dir = tmp_path / "reports"
    generate(out_dir, ["reference"], ["float64"], seed=0, examples=0)
    before = (out_dir / "agreement.json").read_bytes()
    process = _backprop("report", "--adapter", "reference", "--adapter", f"{__name__}:Sleeping", "--dtypes",
                        "float64", "--examples", "1", "--timeout", "0", "--out", str(out_dir), SLEEP_SECONDS="1000")
    time.sleep(6)  # the documents' cases through the reference, then the sleeping adapter's first call
    process.send_signal(signal.SIGINT)
    out, error = process.communicate(timeout=120)
    assert process.returncode == 130, out + error
    assert "the previous report is kept" in error
    assert (out_dir / "agreement.json").read_bytes() == before
    partial = json.loads((out_dir / "agreement.interrupted.json").read_text())
    assert partial["runs"] >= 1 and partial["records"]


def test_a_report_whose_adapters_cannot_run_is_refused_and_the_previous_one_kept(tmp_path, capsys):
    from backprop_conformance.cli import main

    out_dir = tmp_path / "reports"
    generate(out_dir, ["reference"], ["float64"], seed=0, examples=0)
    before = {path.name: path.read_bytes() for path in out_dir.iterdir()}
    status = main(["report", "--adapter", "tests.test_report:Unavailable", "--out", str(out_dir)])
    assert status == 3
    assert "no adapter can run here, so there is nothing to report" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out_dir.iterdir()} == before


def test_load_adapter_gives_adapters_the_default_timeout():
    assert load_adapter("reference").timeout == 60
