"""The ``backprop`` command's conventions: --version, explain over the batch, progress lines, the docs."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import backprop_conformance
from backprop_conformance import reference
from backprop_conformance.cli import main
from backprop_conformance.reference.seeds import example
from backprop_conformance.report import progress
from backprop_conformance.suite.check import EXIT_STATUS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _run(*code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True, timeout=300)


def test_version_is_one_number_everywhere():
    result = subprocess.run([sys.executable, "-m", "backprop_conformance", "--version"], capture_output=True,
                            text=True, check=True)
    assert result.stdout.strip() == f"backprop-conformance {backprop_conformance.__version__}"
    assert importlib.metadata.version("backprop-conformance") == backprop_conformance.__version__
    assert f"## {backprop_conformance.__version__}" in (ROOT / "CHANGELOG.md").read_text()


def test_license_and_typing_marker_ship():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert (ROOT / "conformance" / "py.typed").exists()


def test_explain_traces_the_whole_batch_and_agrees_with_the_seeds_gradient(capsys):
    document = example("001")
    _, grads = reference.loss_and_gradients(document.network, document.params, document.x, document.y)
    assert main(["explain", "--network", "001"]) == 0
    output = capsys.readouterr().out
    assert f"all {len(document.x)} sample(s) of the batch" in output
    summed = float(re.search(r"sum of \d+ term\(s\)\s+=\s+(\S+)", output)[1])
    assert summed == pytest.approx(float(grads[1][0][1, 1]), rel=1e-14)  # W2[1,1], the document's weight
    assert main(["seeds"]) == 0
    assert f"{summed: .15e}" in capsys.readouterr().out  # the seeds job traces the same sum


def test_explain_with_fewer_samples_says_which(capsys):
    assert main(["explain", "--network", "001", "--samples", "1"]) == 0
    assert "samples 0..0 of 2" in capsys.readouterr().out


def test_explain_refuses_samples_beyond_the_batch(capsys):
    assert main(["explain", "--network", "001", "--samples", "99"]) == 2
    assert "--samples 99: document 001's batch has 2 sample(s)" in capsys.readouterr().err


def test_explain_imports_no_framework_unless_asked():
    result = _run(
        "import sys, contextlib, io",
        "from backprop_conformance.cli import main",
        "with contextlib.redirect_stdout(io.StringIO()):",
        "    main(['explain', '--network', '001'])",
        "print(sorted({'torch', 'jax', 'hypothesis', 'matplotlib'} & {m.split('.')[0] for m in sys.modules}))",
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


def test_explain_with_frameworks_prints_their_autograd(capsys):
    pytest.importorskip("torch")
    assert main(["explain", "--network", "000", "--frameworks", "torch"]) == 0
    assert re.search(r"torch-float64 autograd\s+=\s+-?\d", capsys.readouterr().out)


def test_check_parses_without_hypothesis_matplotlib_or_frameworks():
    result = _run(
        "import sys",
        "from backprop_conformance.cli import build_parser",
        "build_parser().parse_args(['check', 'reference'])",
        "print(sorted({'torch', 'jax', 'hypothesis', 'matplotlib', 'optax'} & {m.split('.')[0] for m in sys.modules}))",
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_report_prints_progress_lines_when_stderr_is_not_a_terminal(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    status = main(["report", "--out", str(tmp_path / "out"), "--adapter", "reference", "--examples", "1"])
    assert status == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("report: ")]
    assert len(lines) >= 4  # one per network x adapter run (4 here), and the last
    assert lines[-1].startswith("report: 4/4 network x adapter runs done")


def test_readme_has_install_lines_exit_codes_and_when_to_use_this():
    assert "## Install" in README
    for line in ("pip install backprop-conformance", "pip install 'backprop-conformance[suite]'",
                 "pip install 'backprop-conformance[report]'"):
        assert line in README
    assert "## When to use this instead of gradcheck, check_grads or assert_close" in README
    for code in EXIT_STATUS:
        assert re.search(rf"^\| `?{code}`? \|", README, flags=re.MULTILINE), code
