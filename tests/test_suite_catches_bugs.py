"""The suite rejects every deliberately broken adapter and accepts correct ones.

Each run is ``python -m backprop_conformance check tests.broken_adapters:NAME`` in a
subprocess, with the ``ci`` profile (derandomized), as a user would run it.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.broken_adapters import BROKEN

ROOT = Path(__file__).resolve().parent.parent


def check(*arguments: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "backprop_conformance", "check", *arguments, "--profile", "ci"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("bug", sorted(BROKEN))
def test_suite_rejects_broken_adapter(bug):
    result = check(f"tests.broken_adapters:{BROKEN[bug].__name__}", "--no-shrink", "-x")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "distinct failure(s):" in result.stdout and "FAIL" in result.stdout
    assert BROKEN[bug].name in result.stdout  # the message names the adapter


def test_suite_accepts_a_correct_numpy_adapter_and_the_reference():
    result = check("tests.broken_adapters:CorrectNumpy", "reference")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL" not in result.stdout


def test_failure_shrinks_to_a_minimal_network_with_a_runnable_repro(tmp_path):
    result = check("tests.broken_adapters:MissingActivationDerivative", "-k", "test_sgd_step")
    assert result.returncode == 1
    networks = re.findall(r"in network (\S+) ", result.stdout)
    assert networks, result.stdout[-3000:]
    assert all(width == "1" for width in networks[0].split("-")), networks  # every width shrunk to 1
    # check prints the repro under the failure, each line indented by six spaces.
    lines = result.stdout.split("repro (the case as the adapter got it):\n", 1)[1].splitlines()
    snippet = "\n".join(line[6:] for line in lines[: next(
        (number for number, line in enumerate(lines) if not line.startswith("      ")), len(lines)
    )])
    script = tmp_path / "repro.py"
    script.write_text(snippet)
    rerun = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.count("array(") >= 2  # the adapter's and the reference's params were printed
