"""``backprop check SPEC``: run the suite against one or more adapters and summarise.

Exit status: 0 when every adapter conforms, 1 when any test fails, 3 when
nothing could be checked (every test skipped, e.g. the framework is not
installed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import Phase, settings

from backprop_conformance.suite.assertions import WORST_RATIOS
from backprop_conformance.suite.profiles import PROFILES

#: Test module -> the quantity it checks.
MODULE_QUANTITIES = {
    "test_forward": "output",
    "test_loss": "loss",
    "test_gradients": "gradient",
    "test_updates": "update",
    "test_trajectories": "trajectory",
    "test_seeds": "documents' networks",
}


class SummaryPlugin:
    """Collects each test's outcome by adapter and quantity."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.specs: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Remember which adapter spec each test runs with."""
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and "adapter" in callspec.params:
                self.specs[item.nodeid] = callspec.params["adapter"]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the outcome of the call phase (or of a skip/error in setup)."""
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return
        module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        spec = self.specs.get(report.nodeid, "?")
        self.outcomes[(spec, MODULE_QUANTITIES.get(module, module))].append(report.outcome)

    def rows(self) -> list[tuple[str, str, str, int, str]]:
        """Return (adapter, quantity, verdict, tests, worst ratio) rows."""
        from backprop_conformance.suite.plugin import _LOADED

        rows = []
        for (spec, quantity), outcomes in sorted(self.outcomes.items()):
            verdict = "FAIL" if "failed" in outcomes else "pass" if "passed" in outcomes else "skipped"
            adapter = _LOADED.get(spec)
            label = getattr(adapter, "label", spec)
            ratios = [ratio for key, ratio in WORST_RATIOS.items() if key == (label, quantity)]
            worst = f"{max(ratios):.3g}" if ratios else "-"
            rows.append((spec, quantity, verdict, len(outcomes), worst))
        return rows


def print_summary(rows: list[tuple[str, str, str, int, str]]) -> None:
    """Print the summary table (rich when available)."""
    headers = ("adapter", "quantity", "verdict", "tests", "worst |diff|/allowed")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print("  ".join(headers))
        for row in rows:
            print("  ".join(map(str, row)))
        return
    table = Table(title="backprop conformance")
    for header in headers:
        table.add_column(header)
    for spec, quantity, verdict, tests, worst in rows:
        style = {"FAIL": "bold red", "pass": "green"}.get(verdict, "yellow")
        table.add_row(spec, quantity, f"[{style}]{verdict}[/]", str(tests), worst)
    Console().print(table)


def _profile(name: str, shrink: bool) -> str:
    """Return the Hypothesis profile to use: ``name``, or a copy of it that does not shrink."""
    if shrink:
        return name
    settings.register_profile(
        f"{name}-noshrink", settings(PROFILES[name], phases=[Phase.explicit, Phase.reuse, Phase.generate])
    )
    return f"{name}-noshrink"


def run(arguments: argparse.Namespace) -> int:
    """Run the suite for ``arguments.adapter``; return the exit status."""
    WORST_RATIOS.clear()
    options = ["--pyargs", "backprop_conformance", "-p", "no:cacheprovider", "--tb=short", "-q"]
    options += ["--hypothesis-profile", _profile(arguments.profile, shrink=not arguments.no_shrink)]
    if arguments.exitfirst:
        options.append("-x")
    for spec in arguments.adapter:
        options += ["--adapter", spec]
    if arguments.k:
        options += ["-k", arguments.k]
    summary = SummaryPlugin()
    status = pytest.main(options, plugins=[summary])
    rows = summary.rows()
    print_summary(rows)
    if status == pytest.ExitCode.OK and rows and all(row[2] == "skipped" for row in rows):
        print("nothing was checked: every test was skipped (see the reasons above)")
        return 3
    if status in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return 0 if status == pytest.ExitCode.OK else 1
    return 2 if status == pytest.ExitCode.USAGE_ERROR else 1


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand to ``commands`` and return its parser."""
    parser = commands.add_parser(
        "check",
        help="run the conformance suite against adapters",
        description="Run the conformance suite against each SPEC (package.module:attribute, a built-in name "
        "such as torch-float32, or an entry point) and print a summary; exit 0 if all conform.",
    )
    parser.add_argument("adapter", nargs="+", metavar="SPEC")
    parser.add_argument("--profile", default="ci", choices=sorted(PROFILES), help="Hypothesis profile (default ci)")
    parser.add_argument("-k", default=None, help="only tests matching this pytest -k expression")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    parser.add_argument(
        "--no-shrink", action="store_true", help="report the first failing example as drawn, without shrinking it"
    )
    parser.set_defaults(run=run)
    return parser
