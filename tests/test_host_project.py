"""Installed beside another project, the package changes nothing of that project's pytest or Hypothesis.

An unrelated project is built in a temporary directory and its pytest run in
fresh environments: with this package and pytest alone; with Hypothesis too;
and, for comparison, with Hypothesis but without this package. Its
``settings()`` must be exactly what Hypothesis gives without us, with and
without ``CI=true`` (when ``CI`` is set Hypothesis itself loads its built-in
``ci`` profile, and that is what the project must still see).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.environments import Environment, build_wheel

PLAIN_TEST = '''
def test_arithmetic():
    assert 1 + 1 == 2
'''
HYPOTHESIS_TEST = '''
import json, os, time
from hypothesis import given, settings, strategies as st


def test_dump_settings():
    current = settings()
    fields = ("max_examples", "deadline", "derandomize", "database", "suppress_health_check", "phases",
              "print_blob", "report_multiple_bugs", "verbosity")
    with open(os.environ["SETTINGS_DUMP"], "w") as dump:
        json.dump({"repr": repr(current), **{name: repr(getattr(current, name)) for name in fields}}, dump)


@given(st.just(0))
def test_slow_enough_to_exceed_the_default_deadline(n):
    if not os.environ.get("CI"):  # under CI Hypothesis's ci profile has no deadline: 100 slow examples for nothing
        time.sleep(0.3)
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("unrelated-project")
    (directory / "test_plain.py").write_text(PLAIN_TEST)
    (directory / "test_hypothesis.py").write_text(HYPOTHESIS_TEST)
    return directory


@pytest.fixture(scope="module")
def with_us(tmp_path_factory, wheel) -> Environment:
    return Environment(tmp_path_factory.mktemp("with-us"), wheel, ["numpy", "pytest", "hypothesis"])


@pytest.fixture(scope="module")
def without_us(tmp_path_factory) -> Environment:
    return Environment(tmp_path_factory.mktemp("without-us"), None, ["numpy", "pytest", "hypothesis"])


@pytest.fixture(scope="module")
def pytest_alone(tmp_path_factory, wheel) -> Environment:
    return Environment(tmp_path_factory.mktemp("pytest-alone"), wheel, ["numpy", "pytest"])


def _settings_seen(environment: Environment, project: Path, dump: Path, ci: bool) -> tuple[dict, str]:
    """Return the project's settings() as it saw them, and its pytest output."""
    result = environment.run(
        "python", "-m", "pytest", "-p", "no:cacheprovider", "-q", cwd=project,
        extra_env={"SETTINGS_DUMP": str(dump), **({"CI": "true"} if ci else {})},
    )
    return json.loads(dump.read_text()), result.stdout + result.stderr


def test_with_pytest_alone_beside_us_the_project_passes(pytest_alone, project):
    result = pytest_alone.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_plain.py", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # The plugin is loaded, and inert: its options are there.
    help_text = pytest_alone.run("python", "-m", "pytest", "--help", cwd=project).stdout
    assert "--adapter=SPEC" in help_text and "--conformance-profile" in help_text


def test_without_hypothesis_the_suite_says_what_to_install_when_it_is_asked_for(pytest_alone, project):
    result = pytest_alone.run("python", "-m", "pytest", "--pyargs", "backprop_conformance", "-p",
                              "no:cacheprovider", "-q", "--adapter", "reference", cwd=project)
    assert result.returncode != 0
    assert "pip install 'backprop-conformance[suite]'" in result.stdout + result.stderr
    check = pytest_alone.run("backprop", "check", "reference", cwd=project)
    assert check.returncode == 2
    assert "pip install 'backprop-conformance[suite]'" in check.stderr


@pytest.mark.parametrize("ci", [False, True], ids=["no CI", "CI=true"])
def test_the_projects_hypothesis_settings_are_exactly_hypothesis_own(with_us, without_us, project, tmp_path, ci):
    ours, our_output = _settings_seen(with_us, project, tmp_path / "ours.json", ci)
    theirs, their_output = _settings_seen(without_us, project, tmp_path / "theirs.json", ci)
    assert ours == theirs
    if ci:  # Hypothesis's built-in ci profile, loaded by Hypothesis itself
        assert ours["derandomize"] == "True" and ours["database"] == "None" and ours["deadline"] == "None"
        assert ours["max_examples"] == "100"
    else:  # Hypothesis's defaults
        assert ours["max_examples"] == "100" and ours["deadline"] == "timedelta(milliseconds=200)"
        assert ours["derandomize"] == "False"
        # And the deadline bites: the slow test fails as it does without us.
        assert "DeadlineExceeded" in our_output and "DeadlineExceeded" in their_output
