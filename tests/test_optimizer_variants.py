"""The classic optimizer bugs: each, written into an optimizer implementation of its own, is rejected and named
by the suite; the same implementation without the bug passes in both conventions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backprop_conformance.adapters import load_adapter
from backprop_conformance.reference import Network, Optimizer, batch_schedule
from backprop_conformance.suite import judge
from backprop_conformance.suite.assertions import ConformanceError
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import compare_optimizer_train
from backprop_conformance.suite.variants import BY_NAME, CATALOGUE
from tests.optimizer_adapters import OPTIMIZER_VARIANT_ADAPTERS, NumpyOptaxOptimizers, NumpyOptimizers

ROOT = Path(__file__).resolve().parent.parent
NETWORK = Network((2, 3, 1), ("tanh", "identity"), "mse", bias=True)


def _case(optimizer: Optimizer) -> Case:
    rng = np.random.default_rng(5)
    params = [(rng.uniform(-1, 1, (3, 2)), rng.uniform(-0.5, 0.5, 3)), (rng.uniform(-1, 1, (1, 3)),
                                                                         rng.uniform(-0.5, 0.5, 1))]
    x, y = rng.uniform(-2, 2, (5, 2)), rng.uniform(-1, 1, (5, 1))
    # 4 shuffled epochs of batches of 2 over 5 samples: 12 steps, a partial last batch in each epoch.
    return Case(NETWORK, params, x, y, optimizer.lr, batch_schedule(5, 2, epochs=4, seed=3), optimizer=optimizer)


SHOWN_BY = {
    "no bias correction": _case(Optimizer("adam", lr=0.01)),
    "bias correction one step off": _case(Optimizer("adam", lr=0.01, betas=(0.8, 0.99))),
    "eps on the wrong side of the root": _case(Optimizer("rmsprop", lr=0.01, eps=1e-3)),
    "AdamW's decay not multiplied by lr": _case(Optimizer("adamw", lr=0.01, weight_decay=0.1)),
    "the momentum buffer started at zero": _case(Optimizer("sgd", lr=0.05, momentum=0.9, dampening=0.5)),
    "weight decay applied after the step": _case(Optimizer("sgd", lr=0.05, momentum=0.9, weight_decay=0.1)),
}


def test_every_optimizer_variant_has_an_adapter_and_a_case():
    variants = {variant.name for variant in CATALOGUE if "optimizer" in variant.tags}
    assert variants == set(OPTIMIZER_VARIANT_ADAPTERS) == set(SHOWN_BY)


@pytest.mark.parametrize("name", sorted(SHOWN_BY))
def test_each_optimizer_bug_is_rejected_and_named(name):
    adapter = load_adapter(OPTIMIZER_VARIANT_ADAPTERS[name]())
    with pytest.raises(ConformanceError) as failure:
        judge.check(adapter, SHOWN_BY[name], compare_optimizer_train, drawn=False)
    assert [variant.name for variant in failure.value.diagnosis] == [name]
    assert f"matches the reference with {BY_NAME[name].says()}" in str(failure.value)


@pytest.mark.parametrize("name", sorted(SHOWN_BY))
def test_the_implementation_without_the_bug_passes(name):
    assert judge.check(load_adapter(NumpyOptimizers()), SHOWN_BY[name], compare_optimizer_train, drawn=False) <= 1


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad", "sgd"])
def test_the_optax_convention_of_the_same_implementation_passes(name):
    settings = {"sgd": {"momentum": 0.9, "nesterov": True}, "rmsprop": {"centered": True, "momentum": 0.5},
                "adagrad": {"weight_decay": 0.01}}.get(name, {})
    case = _case(Optimizer(name, "optax", lr=0.01, **settings))
    assert judge.check(load_adapter(NumpyOptaxOptimizers()), case, compare_optimizer_train, drawn=False) <= 1


def _check(*arguments: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backprop_conformance", "check", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("name", ["no bias correction", "eps on the wrong side of the root"])
def test_the_drawn_suite_finds_and_names_the_optimizer_bug(name, tmp_path):
    out = tmp_path / "check.json"
    result = _check(f"tests.optimizer_adapters:{OPTIMIZER_VARIANT_ADAPTERS[name].__name__}", "-k",
                    "test_optimizer_trajectory", "--json", str(out))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    failing = [r for r in json.loads(out.read_text())["records"] if r["verdict"] == "fail"]
    assert failing and all(name in (r["diagnosis"] or []) for r in failing), failing
