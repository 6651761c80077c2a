"""``backprop vectors``: schema-valid, bit for bit the public reference's numbers, deterministic, covering,
and usable by a consumer that reads nothing but the JSON (README: Golden vectors)."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from backprop_conformance import cli
from backprop_conformance.reference import Network, Optimizer, forward, loss_and_gradients, sgd_step, train
from backprop_conformance.reference.conventions import REDUCTIONS
from backprop_conformance.reference.specs import base
from backprop_conformance.suite.case import ACTIVATION_SPECS, LOSS_SPECS
from backprop_conformance.vectors.command import schema_bytes, vectors_bytes, vectors_document
from tests.broken_adapters import CorrectNumpy
from tests.optimizer_adapters import NumpyOptimizers
from tests.variant_adapters import MseWithoutTwo

ROOT = Path(__file__).resolve().parent.parent
SEED, COUNT = 3, 6


@functools.cache
def _written(seed: int, count: int) -> bytes:
    return vectors_bytes(vectors_document(seed, count))


@pytest.fixture(scope="module")
def document() -> dict:
    """The file as a consumer reads it: parsed from the bytes written."""
    return json.loads(_written(SEED, COUNT))


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(schema_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _network(test: dict) -> Network:
    spec = test["network"]
    return Network(tuple(spec["sizes"]), tuple(spec["activations"]), spec["loss"], spec["bias"], spec["reduction"])


def _params(data: list) -> list:
    return [(np.array(w, dtype=np.float64), None if b is None else np.array(b, dtype=np.float64)) for w, b in data]


def _data(test: dict) -> tuple[np.ndarray, np.ndarray]:
    y = np.array(test["y"])
    return np.array(test["x"], dtype=np.float64), y if test["network"]["loss"].startswith("cross_entropy") else \
        y.astype(np.float64)


def _same_params(actual: list, expected: list) -> bool:
    return all(np.array_equal(a, e) and ((b is None and f is None) or np.array_equal(b, f))
               for (a, b), (e, f) in zip(actual, _params(expected)))


def test_the_schema_is_valid_and_the_vectors_validate(document, validator):
    validator.validate(document)
    assert document["numberOfTests"] == len(document["tests"])
    assert [test["tcId"] for test in document["tests"]] == list(range(1, len(document["tests"]) + 1))


@pytest.mark.parametrize("break_it", [
    lambda d: d["tests"][0].pop("expected"),
    lambda d: d["tests"][0]["tolerance"]["float64"]["grads"][0][0][0].__setitem__(0, -1e-9),
    lambda d: d["tests"][0]["network"].__setitem__("reduction", "average"),
    lambda d: d["tests"][0].__setitem__("result", "invalid-ish"),
    lambda d: d["tests"][0]["expected"].__setitem__("loss", "0.5"),
], ids=["no expected", "negative tolerance", "unknown reduction", "unknown result", "loss as a string"])
def test_the_schema_rejects_a_broken_file(document, validator, break_it):
    broken = copy.deepcopy(document)
    break_it(broken)
    with pytest.raises(ValidationError):
        validator.validate(broken)


def test_every_vector_is_the_public_references_numbers_bit_for_bit(document):
    # Not a tolerance comparison: the file must hold exactly what the public API computes from the file's
    # own inputs, so that a consumer reproducing the reference in float64 can be held to the file's digits.
    for test in document["tests"]:
        network, params = _network(test), _params(test["params"])
        x, y = _data(test)
        expected, where = test["expected"], f"tcId {test['tcId']} ({test['comment']})"
        assert np.array_equal(forward(network, params, x), np.array(expected["output"])), where
        value, grads = loss_and_gradients(network, params, x, y)
        assert value == expected["loss"], where
        assert _same_params(grads, expected["grads"]), where
        assert _same_params(sgd_step(network, params, x, y, test["learning_rate"]), expected["step"]), where
        rule = Optimizer(**test["optimizer"]) if "optimizer" in test else test["learning_rate"]
        trajectory = train(network, params, x, y, test["batches"], rule)
        assert np.array_equal(trajectory.losses, np.array(expected["train"]["losses"])), where
        assert _same_params(trajectory.params, expected["train"]["params"]), where


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_draws():
    assert vectors_bytes(vectors_document(SEED, COUNT)) == _written(SEED, COUNT)
    tests = json.loads(_written(SEED, COUNT))["tests"]
    other = json.loads(_written(SEED + 1, COUNT))["tests"]

    def part(tests, flag, key=None):
        return [test if key is None else test[key] for test in tests if flag in test["flags"]]

    assert part(tests, "document") == part(other, "document")  # the documents' own numbers
    assert part(tests, "grid", "network") == part(other, "grid", "network")  # the same coverage ...
    assert part(tests, "grid", "params") != part(other, "grid", "params")  # ... drawn anew
    assert part(tests, "random", "network") != part(other, "random", "network")


def test_the_grid_covers_every_activation_loss_reduction_and_bias(document):
    seen = {(t["network"]["activations"][0], t["network"]["loss"], t["network"]["reduction"], t["network"]["bias"])
            for t in document["tests"] if "grid" in t["flags"]}
    assert seen == set(itertools.product(ACTIVATION_SPECS, LOSS_SPECS, REDUCTIONS, (True, False)))


def test_edge_cases_are_there_and_every_flag_is_explained(document):
    flags = {flag for test in document["tests"] for flag in test["flags"]}
    assert {"document", "grid", "dead-units", "saturated", "softplus-threshold", "width-1", "batch-1", "wide-batch",
            "deep", "optimizer", "random"} <= flags
    assert flags <= set(document["notes"])
    assert sum("document" in t["flags"] for t in document["tests"]) == 3
    assert sum("random" in t["flags"] for t in document["tests"]) == COUNT
    dead = [test for test in document["tests"] if "dead-units" in test["flags"]]
    assert {label for test in dead for label in test["conventions"]} >= {"relu'(0) = 0", "leaky_relu'(0) = 0.01"}
    assert all(test["result"] == "acceptable" for test in dead)
    assert all(test["result"] == "valid" for test in document["tests"] if not test["conventions"])


def test_every_optimizer_is_there_in_both_conventions_on_the_same_draw(document):
    tests = [test for test in document["tests"] if "optimizer" in test["flags"]]
    names = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
    assert {(t["optimizer"]["name"], t["optimizer"]["convention"]) for t in tests} == set(
        itertools.product(names, ("torch", "optax")))
    for torch_test, optax_test in zip(tests[::2], tests[1::2]):
        assert torch_test["params"] == optax_test["params"] and torch_test["batches"] == optax_test["batches"]
        assert len(torch_test["batches"]) >= 10
    rmsprop = [t for t in tests if t["optimizer"]["name"] == "rmsprop"]
    assert all("eps on the wrong side of the root" in t["variants"] for t in rmsprop)


def test_float32_tolerances_are_wider_or_absent_with_a_reason(document):
    for test in document["tests"]:
        float32 = test["tolerance"]["float32"]
        if float32 is None:
            assert test["outside_model"]["float32"], test["comment"]
            continue
        assert float32["loss"] > test["tolerance"]["float64"]["loss"], test["comment"]


def test_every_float_round_trips_through_the_text(document):
    text = _written(SEED, COUNT).decode()
    numbers = re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)
    assert numbers and all(float(repr(float(n))) == float(n) for n in numbers[:2000])
    assert all(len(re.sub(r"[^0-9]", "", n.split("e")[0]).lstrip("0")) <= 17 for n in numbers)
    assert "NaN" not in text and "Infinity" not in text


# -- a consumer that reads only the JSON ---------------------------------------------------------------------------

def _failures(implementation, test: dict, dtype: str = "float64") -> list[str]:
    """Return what an implementation gets wrong on one vector, judged by the file's tolerance alone."""
    network, params = _network(test), _params(test["params"])
    x, y = _data(test)
    expected, allowed = test["expected"], test["tolerance"][dtype]
    failures = []

    def judge(name, actual, wanted, tolerance):
        if wanted is None:
            return
        if np.shape(actual) != np.shape(wanted) or np.any(np.abs(np.asarray(actual) - wanted) > tolerance):
            failures.append(name)

    def judge_params(name, actual, wanted, tolerance):
        for layer, ((a, b), (w, c), (t, u)) in enumerate(zip(actual, wanted, tolerance), start=1):
            judge(f"{name} W{layer}", a, np.array(w), np.array(t))
            judge(f"{name} b{layer}", b, None if c is None else np.array(c), None if u is None else np.array(u))

    judge("output", implementation.forward(network, params, x), np.array(expected["output"]),
          np.array(allowed["output"]))
    value, grads = implementation.loss_and_gradients(network, params, x, y)
    judge("loss", value, expected["loss"], allowed["loss"])
    judge_params("grads", grads, expected["grads"], allowed["grads"])
    judge_params("step", implementation.sgd_step(network, params, x, y, test["learning_rate"]), expected["step"],
                 allowed["step"])
    if "optimizer" in test:  # an optimizer written apart from the reference (tests.optimizer_adapters)
        trainer = type("Trainer", (NumpyOptimizers, type(implementation)), {})()  # its gradients, our optimizers
        trained = trainer.train(network, params, x, y, test["batches"], test["learning_rate"],
                                Optimizer(**test["optimizer"]))
        losses, params = list(trained.losses), trained.params
    else:
        losses = []
        for batch in test["batches"]:
            losses.append(implementation.loss_and_gradients(network, params, x[batch], y[batch])[0])
            params = implementation.sgd_step(network, params, x[batch], y[batch], test["learning_rate"])
    judge("train losses", np.array(losses), np.array(expected["train"]["losses"]),
          np.array(allowed["train"]["losses"]))
    judge_params("train", params, expected["train"]["params"], allowed["train"]["params"])
    return failures


def test_a_correct_implementation_passes_every_vector_by_the_files_tolerance(document):
    failing = {test["tcId"]: _failures(CorrectNumpy(), test) for test in document["tests"]}
    assert {tc: found for tc, found in failing.items() if found} == {}


def test_a_known_deviation_fails_exactly_where_the_file_says_it_can_show(document):
    mse = [test for test in document["tests"] if base(test["network"]["loss"]) == "mse"]
    labelled = [test for test in mse if "mse without its factor 2" in test["variants"]]
    assert len(labelled) >= 8
    assert all(_failures(MseWithoutTwo(), test) for test in labelled)
    others = [test for test in document["tests"] if "mse without its factor 2" not in test["variants"]]
    assert all(not _failures(MseWithoutTwo(), test) for test in others)


# -- the command ------------------------------------------------------------------------------------------------

def test_the_command_writes_the_vectors_and_their_schema(tmp_path, capsys):
    out = tmp_path / "vectors"
    assert cli.main(["vectors", "--out", str(out), "--seed", "5", "--count", "1"]) == 0
    assert "test vectors" in capsys.readouterr().out
    written = json.loads((out / "vectors.json").read_text())
    Draft202012Validator(json.loads((out / "vectors.schema.json").read_text())).validate(written)
    assert written["seed"] == 5 and written["count"] == 1
    assert (out / "vectors.json").read_bytes() == _written(5, 1)


def test_an_output_that_is_a_file_is_refused_and_left_alone(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("mine")
    assert cli.main(["vectors", "--out", str(target), "--count", "0"]) == 2
    assert "backprop vectors:" in capsys.readouterr().err
    assert target.read_text() == "mine"


def _readme_javascript() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Golden vectors", 1)[1]
    return re.search(r"```js\n(.*?)```", section, re.S).group(1)


def test_the_readmes_javascript_consumer_runs_on_the_vectors(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the README's JavaScript consumer is not run")
    (tmp_path / "vectors.json").write_bytes(_written(SEED, COUNT))
    (tmp_path / "check.js").write_text(_readme_javascript())
    result = subprocess.run([node, "check.js"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ of \d+ vectors agree", result.stdout), result.stdout
