"""Fixtures shared by the unit tests, and the end-of-run agreement summary.

Tests that compare two gradient computations over many Hypothesis examples
record their worst relative error in ``agreement_log``; the terminal summary
prints one line per comparison, e.g.

    reference vs complex step: worst relative error 3.1e-15 over 60 examples

so a run shows how much margin every tolerance has, not just that it held.
Works under pytest-xdist: each worker ships its log to the controller.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

# This repository's own unit tests' Hypothesis profiles (the suite has its own, suite.profiles).
# Named apart from Hypothesis's built-in "ci", which is left as it is.
_UNIT = {
    "deadline": None,  # JAX compiles on first calls
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}
settings.register_profile("unit-dev", max_examples=40, **_UNIT)
settings.register_profile("unit-ci", max_examples=60, derandomize=True, database=None, print_blob=True, **_UNIT)
settings.load_profile("unit-ci" if os.environ.get("CI") else "unit-dev")

#: Top-level names the package must never be imported under. In this repository its folders sit
#: on sys.path (pytest's rootdir), so ``import reference`` would work here and nowhere else.
STRAY_TOP_LEVEL_NAMES = ("reference", "adapters")


@dataclass
class Agreement:
    """The worst relative error seen in one comparison, and over how many examples."""

    worst: float = 0.0
    examples: int = 0
    worst_case: str = ""

    def absorb(self, worst: float, examples: int, worst_case: str) -> None:
        if examples and (self.examples == 0 or worst > self.worst):
            self.worst, self.worst_case = worst, worst_case
        self.examples += examples


@dataclass
class AgreementLog:
    """Worst relative errors per comparison title, e.g. "reference vs complex step"."""

    comparisons: dict[str, Agreement] = field(default_factory=dict)

    def record(self, title: str, error: float, case: str) -> None:
        """Count one example of ``title`` whose worst relative error was ``error``."""
        self.comparisons.setdefault(title, Agreement()).absorb(error, 1, case)

    def to_dict(self) -> dict[str, tuple[float, int, str]]:
        return {title: (a.worst, a.examples, a.worst_case) for title, a in self.comparisons.items()}

    def merge(self, other: dict[str, tuple[float, int, str]]) -> None:
        for title, (worst, examples, case) in other.items():
            self.comparisons.setdefault(title, Agreement()).absorb(worst, examples, case)

    def lines(self) -> list[str]:
        return [
            f"{title}: worst relative error {a.worst:.1e} over {a.examples} examples (worst at {a.worst_case})"
            for title, a in sorted(self.comparisons.items())
        ]


@pytest.fixture(autouse=True)
def _no_import_outside_the_package_root():
    """Fail any test after which a module was imported as ``reference...`` or ``adapters...``.

    pytest itself imports the suite's test modules from ``conformance/`` as
    ``conformance.suite.*``; any other ``conformance.*`` is stray too.
    """
    yield
    stray = sorted(
        name for name in list(sys.modules)
        if name.split(".")[0] in STRAY_TOP_LEVEL_NAMES
        or (name.split(".")[0] == "conformance" and name not in ("conformance", "conformance.suite")
            and not name.startswith(("conformance.suite.test_", "conformance.suite.conftest")))
    )
    assert not stray, f"imported outside backprop_conformance: {stray}"


_AGREEMENT_LOG = pytest.StashKey[AgreementLog]()
_WORKER_OUTPUT_KEY = "reference_agreement_log"


def _log(config: pytest.Config) -> AgreementLog:
    if _AGREEMENT_LOG not in config.stash:
        config.stash[_AGREEMENT_LOG] = AgreementLog()
    return config.stash[_AGREEMENT_LOG]


@pytest.fixture(scope="session")
def agreement_log(pytestconfig: pytest.Config) -> AgreementLog:
    """Return the run's log of worst relative errors (session-scoped: safe under @given)."""
    return _log(pytestconfig)


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:  # an xdist worker: hand the log to the controller
        worker_output[_WORKER_OUTPUT_KEY] = _log(session.config).to_dict()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    worker_log = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT_KEY)
    if worker_log:
        _log(node.config).merge(worker_log)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    lines = _log(config).lines()
    if lines:
        terminalreporter.write_sep("-", "gradient agreement of the reference's oracles")
        for line in lines:
            terminalreporter.write_line(line)
