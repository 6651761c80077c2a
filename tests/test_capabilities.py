"""Partial implementations: what an adapter declares it cannot do is not applicable, counted, never failed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backprop_conformance.adapters import Adapter, Unsupported
from backprop_conformance.reference.seeds import example
from backprop_conformance.report.publish import generate
from tests.variant_adapters import NoSigmoidNoBce

ROOT = Path(__file__).resolve().parent.parent


def _check(*arguments: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "CI"} | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backprop_conformance", "check", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_unsupported_is_asked_before_the_call_and_raised():
    adapter = Adapter(NoSigmoidNoBce())
    document = example("001")  # sigmoid layers, mse
    with pytest.raises(Unsupported, match="no sigmoid"):
        adapter.loss_and_gradients(document.network, document.params, document.x, document.y)
    assert adapter.unsupported(example("000").network, "train") == "no bce: only mse and cross_entropy are implemented"


def test_a_partial_adapter_passes_on_what_it_declares_and_counts_the_rest(tmp_path):
    out = tmp_path / "check.json"
    result = _check("tests.variant_adapters:NoSigmoidNoBce", "--json", str(out))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # The table's "not applicable" column counts cases, and the reasons are listed under it.
    row = r"│ tests\.variant_adapters:NoSigmoidNoBce\s+│ ([\w' ]+?)\s+│ (\w+)\s+│ (\d+)\s+│ (\S+)\s+│ (\d+)"
    rows = re.findall(row, result.stdout)
    gradient = next(row for row in rows if row[0] == "gradient")
    assert gradient[1] == "pass" and int(gradient[4]) > 0
    assert "case(s) not applicable, over all quantities" in result.stdout
    assert "  no sigmoid: only identity, tanh and relu are implemented" in result.stdout
    assert "  no bce: only mse and cross_entropy are implemented" in result.stdout
    records = json.loads(out.read_text())["records"]
    gradients = [r for r in records if r["quantity"] == "gradient" and "test_gradients" in r["test"]]
    assert gradients[0]["verdict"] == "pass" and gradients[0]["not_applicable"]
    # Every document uses sigmoid: its cases are skipped, with the reason.
    documents = [r for r in records if "test_document_network" in r["test"]]
    assert documents and all(r["verdict"] == "skipped" for r in documents)
    assert all(re.search(r"not applicable: no (sigmoid|bce)", r["message"]) for r in documents)


def test_unsupported_raised_from_a_method_is_not_applicable(tmp_path):
    out = tmp_path / "check.json"
    result = _check("tests.variant_adapters:NoTrain", "-k", "test_training_trajectory or test_gradients",
                    "--json", str(out))
    assert result.returncode == 0, result.stdout[-3000:]
    records = json.loads(out.read_text())["records"]
    training = next(r for r in records if "test_training_trajectory" in r["test"])
    assert training["verdict"] == "skipped" and "train is not implemented" in training["message"]


def test_an_adapter_that_can_do_nothing_checked_nothing_and_exits_3():
    result = _check("tests.variant_adapters:Nothing")
    assert result.returncode == 3, result.stdout[-3000:]
    assert "nothing was checked" in result.stdout


def test_the_report_shows_not_applicable_with_the_reason(tmp_path):
    document = generate(tmp_path / "out", ["tests.variant_adapters:NoSigmoidNoBce"], ["float64"], seed=0, examples=6)
    not_applicable = [r for r in document["records"] if r["verdict"] == "not applicable"]
    assert not_applicable and all(r["message"].startswith(("no sigmoid", "no bce")) for r in not_applicable)
    assert {r["network"] for r in not_applicable} >= {"doc-000", "doc-001", "doc-002"}
    (summary,) = document["summary"]
    assert summary["counts"]["not applicable"] == len(not_applicable)
    assert summary["counts"]["pass"] > 0 and summary["counts"]["fail"] == 0
    markdown = (tmp_path / "out" / "agreement.md").read_text()
    assert "not applicable: no sigmoid" in markdown
