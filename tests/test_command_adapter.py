"""``backprop check --command``: code in any language, as a subprocess speaking JSON lines.

The C example (``examples/c/mlp.c``) is compiled with the system's ``cc``
and checked by the whole suite; its ``-DBROKEN`` build (mse's dJ/da without
the factor 2) is rejected and diagnosed. ``tests.protocol_programs`` gives
the reference behind the protocol, and processes that crash, hang, or
answer nonsense: each is a failure that says what the process did.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.adapters import AdapterError, Unsupported, load_adapter
from backprop_conformance.adapters.boundary import AdapterCallError
from backprop_conformance.reference.seeds import example

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "tests" / "protocol_programs.py"
C_SOURCE = ROOT / "examples" / "c" / "mlp.c"
COMPILER = shutil.which("cc")
needs_cc = pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc) on this machine")


def program(mode: str) -> str:
    """Return the command line of ``tests.protocol_programs`` in ``mode``."""
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(PROGRAMS))} {mode}"


def _check(*arguments: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "backprop_conformance.cli", "check", *arguments]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def c_programs(tmp_path_factory) -> dict[str, Path]:
    """Compile the C example, and its broken build, once for this module."""
    if COMPILER is None:
        pytest.skip("no C compiler (cc) on this machine")
    out = tmp_path_factory.mktemp("c")
    built = {}
    for name, flags in (("mlp", []), ("mlp-broken", ["-DBROKEN"])):
        built[name] = out / name
        subprocess.run([COMPILER, "-O2", "-std=c99", *flags, "-o", str(built[name]), str(C_SOURCE), "-lm"],
                       check=True, capture_output=True, timeout=120)
    return built


@needs_cc
def test_the_c_example_conforms_through_the_whole_suite(c_programs, tmp_path):
    out = tmp_path / "check.json"
    result = _check("--command", str(c_programs["mlp"]), "--max-examples", "25", "--json", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    records = json.loads(out.read_text())["records"]
    assert {r["verdict"] for r in records if "test_optimizers" not in r["test"]} <= {"pass", "not applicable"}
    optimizers = [r for r in records if "test_optimizers" in r["test"]]  # its train takes no optimizer: SGD only
    assert optimizers and all(r["verdict"] == "skipped" and "plain gradient descent only" in r["message"]
                              for r in optimizers)
    passed = {r["quantity"] for r in records if r["verdict"] == "pass"}
    assert {"output", "loss", "gradient", "update", "trajectory"} <= passed
    assert "activation gelu is not implemented in C" in result.stdout  # partial, and says so


@needs_cc
def test_the_broken_c_build_is_rejected_and_diagnosed(c_programs, tmp_path):
    out = tmp_path / "check.json"
    result = _check("--command", str(c_programs["mlp-broken"]), "-k", "test_gradients", "--json", str(out))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "c-mlp-broken float64: gradient" in result.stdout
    assert "matches the reference with mse without its factor 2" in result.stdout
    failing = [r for r in json.loads(out.read_text())["records"] if r["verdict"] == "fail"]
    assert failing and all("mse without its factor 2" in r["diagnosis"] for r in failing)


@needs_cc
def test_the_c_example_answers_document_000_as_the_reference_does(c_programs):
    adapter = load_adapter(f"command:{c_programs['mlp']}")
    seed = example("000")
    loss, grads = adapter.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    expected_loss, expected = reference.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    assert loss == pytest.approx(expected_loss, rel=1e-14)
    for (d_weight, _), (expected_weight, _) in zip(grads, expected):
        np.testing.assert_allclose(d_weight, expected_weight, rtol=1e-13, atol=1e-16)


def test_the_reference_behind_the_protocol_conforms(tmp_path):
    result = _check("--command", program("reference"), "--max-examples", "10")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "python reference" not in result.stderr


def test_a_process_that_declares_optimizers_gets_them_and_is_judged_in_both_conventions(tmp_path):
    out = tmp_path / "check.json"
    result = _check("--command", program("optimizers"), "-k", "test_optimizer_trajectory", "--max-examples", "15",
                    "--json", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    [record] = json.loads(out.read_text())["records"]
    assert record["verdict"] == "pass" and record["worst_ratio"] < 1e-6  # the reference itself, through JSON
    adapter = load_adapter(f"command:{program('optimizers')}")
    network = reference.Network((2, 1), ("identity",), "mse")
    params, x, y = [(np.array([[0.5, -0.25]]), np.array([0.1]))], np.array([[1.0, 2.0]]), np.array([[0.3]])
    optimizer = reference.Optimizer("rmsprop", "optax", lr=0.01)
    got = adapter.train(network, params, x, y, [np.array([0])] * 3, optimizer.lr, optimizer)
    expected = reference.train(network, params, x, y, [np.array([0])] * 3, optimizer)
    np.testing.assert_allclose(got.params[0][0], expected.params[0][0], rtol=1e-15)


def test_a_process_without_optimizers_is_sgd_only():
    adapter = load_adapter(f"command:{program('reference')}")
    network = reference.Network((2, 1), ("identity",), "mse")
    params, x, y = [(np.array([[0.5, -0.25]]), np.array([0.1]))], np.array([[1.0, 2.0]]), np.array([[0.3]])
    with pytest.raises(Unsupported, match="plain gradient descent only"):
        adapter.train(network, params, x, y, [np.array([0])], 0.1, reference.Optimizer("adam", lr=0.1))


def test_unsupported_answers_are_not_applicable_not_failures():
    result = _check("--command", program("no-sigmoid"), "-k", "test_gradients", "--max-examples", "15")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "no sigmoid here" in result.stdout


@pytest.mark.parametrize(("mode", "says"), [
    ("crash", r"exited \(status 3\) instead of answering; its stderr ends: segmentation fault \(pretend\)"),
    ("garbage", r"answered a line that is not JSON .*'loss = 0.5'"),
    ("error", r"it answered an error: the GPU is busy"),
])
def test_a_process_that_misbehaves_fails_saying_what_it_did(mode, says):
    seed = example("000")
    adapter = load_adapter(f"command:{program(mode)}")
    with pytest.raises(AdapterCallError, match=says):
        adapter.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)


def test_a_silent_process_runs_into_the_timeout_and_the_suite_says_so():
    result = _check("--command", program("silent"), "-k", "test_seeds", "-x", "--timeout", "2")
    assert result.returncode == 1
    assert "python silent float64: forward() did not return within 2 s" in result.stdout, result.stdout[-3000:]
    assert "not called again" in result.stdout


def test_a_wrong_shape_is_named_by_the_suite():
    result = _check("--command", program("wrong-shape"), "-k", "test_gradients", "-x")
    assert result.returncode == 1
    assert "shape" in result.stdout, result.stdout[-3000:]


@pytest.mark.parametrize(("command", "says"), [
    (program("no-describe"), r"describe failed: the process exited \(status 1\).*does not speak the protocol"),
    (program("nameless"), r"describe answered no 'name'"),
    ("/nonexistent/program --flag", r"cannot be started"),
    ("   ", r"is not a command line"),
])
def test_a_program_that_cannot_describe_itself_is_a_load_error(command, says):
    with pytest.raises(AdapterError, match=says):
        load_adapter(f"command:{command}")


def test_check_refuses_a_command_that_cannot_start_with_exit_2():
    result = _check("--command", "/nonexistent/program")
    assert result.returncode == 2
    assert "cannot be started" in result.stderr


def test_check_needs_a_spec_or_a_command():
    result = _check()
    assert result.returncode == 2
    assert "give at least one SPEC or --command CMD" in result.stderr
