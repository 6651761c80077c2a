"""``backprop check``: finding adapters, exit codes, its options, and one report per distinct failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from backprop_conformance.suite.check import EXIT_STATUS

ROOT = Path(__file__).resolve().parent.parent
BACKPROP = [sys.executable, "-m", "backprop_conformance"]

ADAPTERS = '''
import os
from backprop_conformance import reference
from backprop_conformance.adapters import AdapterUnavailable


class Mine:
    """The reference under another name, counting its calls into $COUNT_FILE when set."""

    name = "mine"

    def loss_and_gradients(self, network, params, x, y):
        if os.environ.get("COUNT_FILE"):
            with open(os.environ["COUNT_FILE"], "a") as count:
                count.write("x")
        return reference.loss_and_gradients(network, params, x, y)


class Nameless:
    def loss_and_gradients(self, network, params, x, y):
        return reference.loss_and_gradients(network, params, x, y)


class BadDtype(Mine):
    dtype = "float16"


class Raising(Mine):
    name = "raising"

    def loss_and_gradients(self, network, params, x, y):
        raise RuntimeError("not written yet")


class DoubledLoss(Mine):
    name = "doubled-loss"

    def loss_and_gradients(self, network, params, x, y):
        value, grads = reference.loss_and_gradients(network, params, x, y)
        return 2 * value, grads


def unavailable():
    raise AdapterUnavailable("its framework is not installed here")
'''


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A directory outside the repository holding mymodule.py, as a user's project would."""
    (tmp_path / "mymodule.py").write_text(ADAPTERS)
    return tmp_path


def check(workdir: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "CI")} | environment
    return subprocess.run([*BACKPROP, "check", *arguments], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)


def test_a_module_in_the_current_directory_is_found_as_python_m_finds_it(workdir):
    result = check(workdir, "mymodule:Mine", "--max-examples", "5")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mymodule:Mine" in result.stdout and "FAIL" not in result.stdout


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nosuchmodule:Adapter", "cannot import module 'nosuchmodule'"),
        ("mymodule:NoSuchAttribute", "has no attribute 'NoSuchAttribute'"),
        ("mymodule:Nameless", "has no 'name'"),
        ("mymodule:BadDtype", "dtype='float16'"),
    ],
)
def test_a_load_error_exits_2_with_one_message_and_no_table(workdir, spec, message):
    result = check(workdir, spec)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stderr.count("backprop check:") == 1
    assert "FAIL" not in result.stdout and "passed" not in result.stdout


def test_nothing_checked_exits_3(workdir):
    result = check(workdir, "mymodule:unavailable")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "nothing was checked" in result.stdout


def test_max_examples_bounds_the_cases_hypothesis_draws(workdir, tmp_path):
    counts = {}
    for examples in (3, 12):
        count_file = tmp_path / f"count-{examples}"
        result = check(workdir, "mymodule:Mine", "--max-examples", str(examples), "-k", "test_gradients",
                       COUNT_FILE=str(count_file))
        assert result.returncode == 0, result.stdout + result.stderr
        counts[examples] = len(count_file.read_text())
    # Each example is one call; Hypothesis replays none here (no failure, no database under ci).
    assert 1 <= counts[3] <= 3 < counts[12] <= 12


def test_json_has_a_record_per_test_and_quantity_with_the_shrunk_case(workdir, tmp_path):
    out = tmp_path / "check.json"
    result = check(workdir, "mymodule:DoubledLoss", "--json", str(out), "--max-examples", "10")
    assert result.returncode == 1
    document = json.loads(out.read_text())
    assert document["exit_status"] == 1 and document["settings"]["adapters"] == ["mymodule:DoubledLoss"]
    records = document["records"]
    assert {"test", "adapter", "quantity", "verdict", "worst_ratio", "case", "message", "diagnosis"} <= set(records[0])
    failing = [r for r in records if r["verdict"] == "fail"]
    # The loss is wrong, and so are the losses of a trajectory; the gradients are right.
    assert failing and {r["quantity"] for r in failing} == {"loss", "trajectory"}
    drawn = next(r for r in failing if "test_loss_value" in r["test"])
    assert drawn["case"]["network"]["sizes"] and drawn["case"]["params"]  # the shrunk case, as data
    assert len(drawn["case"]["network"]["sizes"]) == 2  # shrunk to one layer
    passing = [r for r in records if r["verdict"] == "pass" and r["quantity"] == "gradient"]
    assert passing and all(r["worst_ratio"] is not None and r["worst_ratio"] <= 1 for r in passing)


def test_junitxml_and_pytest_arguments_after_the_double_dash(workdir, tmp_path):
    junit = tmp_path / "junit.xml"
    result = check(workdir, "mymodule:Mine", "--max-examples", "2", "--junitxml", str(junit), "--", "--durations=1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "slowest 1 durations" in result.stdout
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    assert len(list(cases)) == 18


def test_the_same_error_everywhere_is_reported_once(workdir):
    result = check(workdir, "mymodule:Raising")
    assert result.returncode == 1
    assert "1 distinct failure(s):" in result.stdout
    assert result.stdout.count("not written yet") == 1
    assert re.search(r"seen in 1[0-9] test\(s\)", result.stdout), result.stdout[-2000:]


def test_failure_output_has_no_advice_that_does_not_apply(workdir):
    result = check(workdir, "mymodule:DoubledLoss")
    output = result.stdout + result.stderr
    assert result.returncode == 1
    for noise in ("Explanation", "reproduce_failure", "PytestAssertRewriteWarning", "Falsifying example"):
        assert noise not in output, noise
    assert len(output) < 12_000, len(output)
    distinct = int(re.search(r"(\d+) distinct failure", output)[1])
    assert output.count("repro (the case as the adapter got it):") == distinct


def test_help_documents_every_exit_status():
    result = subprocess.run([*BACKPROP, "check", "--help"], capture_output=True, text=True, check=True)
    for code in EXIT_STATUS:
        assert re.search(rf"^\s+{code}\s", result.stdout, flags=re.MULTILINE), code


def test_every_ratio_in_the_summary_was_judged(workdir, tmp_path):
    out = tmp_path / "check.json"
    result = check(workdir, "mymodule:DoubledLoss", "--json", str(out), "--max-examples", "10")
    rows = re.findall(r"│ mymodule:DoubledLoss\s+│ ([\w' ]+?)\s+│ (\w+)\s+│ (\d+)\s+│ (\S+)\s+│", result.stdout)
    assert {row[0] for row in rows} >= {"gradient", "loss", "documents' networks"}, result.stdout
    for quantity, verdict, _, worst in rows:
        if verdict == "skipped":  # forward: this adapter has none
            continue
        assert worst != "-", quantity  # the documents' row too: a number that was judged
        if verdict == "pass":
            assert float(worst) <= 1, (quantity, worst)
    # test_gradients measures the (wrong) loss too, but only judges the gradients: no loss record of it.
    records = json.loads(out.read_text())["records"]
    assert {r["quantity"] for r in records if "test_gradients" in r["test"]} == {"gradient"}
    assert all(r["worst_ratio"] is None or r["worst_ratio"] <= 1 for r in records if r["verdict"] == "pass")
