"""The wheel, installed as a user installs it: one top-level name, and it works outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.environments import ROOT, Environment, build_wheel, wheel_files, wheel_top_level

README = (ROOT / "README.md").read_text()
#: pyproject.toml's package-dir: where each installed package's files come from.
SOURCES = {
    "backprop_conformance": ROOT / "conformance",
    "backprop_conformance/reference": ROOT / "reference",
    "backprop_conformance/adapters": ROOT / "adapters",
}
#: What the suite and the report need, with their own dependencies (not torch or JAX).
SUITE_AND_REPORT = ["numpy", "pytest", "hypothesis", "rich", "matplotlib", "threadpoolctl"]
#: The [suite] extra alone: what backprop check and pytest --pyargs need.
SUITE = ["numpy", "pytest", "hypothesis", "rich"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def environment(tmp_path_factory, wheel) -> Environment:
    return Environment(tmp_path_factory.mktemp("environment"), wheel, SUITE_AND_REPORT)


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A working directory outside the repository, with nothing in it."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    assert ROOT not in directory.parents
    return directory


def test_the_wheel_has_one_top_level_package(wheel):
    top = wheel_top_level(wheel)
    assert top == {"backprop_conformance", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}


def test_the_wheel_holds_every_source_module_and_the_schema(wheel):
    files = wheel_files(wheel)
    expected = set()
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder)
            if package == "backprop_conformance" or len(relative.parts) == 1:
                expected.add(f"{package}/{relative.as_posix()}")
    assert expected - files == set()
    assert {"backprop_conformance/report/schema.json", "backprop_conformance/py.typed"} <= files
    assert any(name.endswith(".dist-info/licenses/LICENSE") or name.endswith(".dist-info/LICENSE") for name in files)


def test_the_suite_extra_is_enough_for_check(tmp_path_factory, wheel, elsewhere):
    suite_only = Environment(tmp_path_factory.mktemp("suite-only"), wheel, SUITE)
    assert suite_only.run("python", "-c", "import matplotlib", cwd=elsewhere).returncode == 1
    result = suite_only.run("backprop", "check", "reference", "--max-examples", "5", cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_check_runs_installed_from_another_directory(environment, elsewhere):
    result = environment.run("backprop", "check", "reference", cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reference" in result.stdout and "FAIL" not in result.stdout


def test_pytest_pyargs_runs_the_suite_installed(environment, elsewhere):
    result = environment.run("python", "-m", "pytest", "--pyargs", "backprop_conformance", "--adapter", "reference",
                             "-q", "-p", "no:cacheprovider", cwd=elsewhere)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", result.stdout), result.stdout[-2000:]


def test_the_readme_oracle_example_runs_installed(environment, elsewhere):
    example = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)[0]
    (elsewhere / "oracle.py").write_text(example)
    result = environment.run("python", "oracle.py", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "dJ/dW1[0,1]" in result.stdout


def test_no_generic_top_level_name_is_importable(environment, elsewhere):
    for name in ("reference", "adapters", "conformance"):
        result = environment.run("python", "-c", f"import {name}", cwd=elsewhere)
        assert result.returncode == 1 and "ModuleNotFoundError" in result.stderr, (name, result.stderr)
