"""What ``backprop check`` makes of a suite run: the summary table, distinct failures, the JSON records.

``SummaryPlugin`` is handed to ``pytest.main``; it sees every test's outcome
and reads what the test recorded (``suite.session``). A failure's cause is
its adapter, quantity, array and shrunk network: failures with the same
cause (a wrong factor shows in the gradients of every test module) are
printed once, with the tests that showed it and the smallest repro.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from backprop_conformance.suite import session

#: Test module -> the quantity its row of the summary stands for.
MODULE_QUANTITIES = {
    "test_forward": "output",
    "test_loss": "loss",
    "test_gradients": "gradient",
    "test_updates": "update",
    "test_trajectories": "trajectory",
    "test_seeds": "documents' networks",
}
VERDICT_ORDER = ("FAIL", "pass", "skipped")


@dataclass
class Outcome:
    """One test as pytest reported it, with what the suite recorded for it."""

    nodeid: str
    adapter: str
    row: str
    outcome: str  # passed, failed, skipped
    reason: str | None = None
    result: session.TestResult | None = None


@dataclass
class Cause:
    """Failures that share a cause: the first one's details, and every test that showed it."""

    key: tuple
    failure: dict[str, Any]
    tests: list[str] = field(default_factory=list)


def _module(nodeid: str) -> str:
    return nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")


def short_test_id(nodeid: str, spec: str) -> str:
    """Return the test's name and parameters without the adapter spec (the failure names the adapter)."""
    base, _, parameters = nodeid.split("::")[-1].partition("[")
    parameters = f"-{parameters.removesuffix(']')}-".replace(f"-{spec}-", "-", 1).strip("-")
    return f"{base}[{parameters}]" if parameters else base


def _reason(report: pytest.TestReport) -> str | None:
    """Return a skip's reason or a failure's one-line crash message, from pytest's report."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return None if longrepr is None else str(longrepr).strip().splitlines()[-1]


class SummaryPlugin:
    """Collects each test's outcome, by adapter and the quantity its module checks."""

    def __init__(self) -> None:
        self.specs: dict[str, str] = {}
        self.outcomes: dict[str, Outcome] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Remember which adapter spec each test runs with."""
        for item in items:
            callspec = getattr(item, "callspec", None)
            if callspec is not None and "adapter" in callspec.params:
                self.specs[item.nodeid] = callspec.params["adapter"]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record the outcome of the call phase, or of a setup that did not pass (a skip, a fixture error)."""
        if report.when != "call" and not (report.when == "setup" and not report.passed):
            return
        module = _module(report.nodeid)
        self.outcomes[report.nodeid] = Outcome(
            nodeid=report.nodeid,
            adapter=self.specs.get(report.nodeid, "?"),
            row=MODULE_QUANTITIES.get(module, module),
            outcome=report.outcome,
            reason=None if report.passed else _reason(report),
            result=session.results().get(report.nodeid),
        )

    # -- what is made of the outcomes ------------------------------------------------------

    def _groups(self) -> dict[tuple[str, str], list[Outcome]]:
        groups: dict[tuple[str, str], list[Outcome]] = {}
        for outcome in self.outcomes.values():
            groups.setdefault((outcome.adapter, outcome.row), []).append(outcome)
        return dict(sorted(groups.items()))

    @staticmethod
    def _tally(outcomes: list[Outcome], kind: str) -> dict[str, int]:
        """Return reason (or convention) -> cases, summed over the outcomes' ``kind`` of every quantity."""
        tally: dict[str, int] = {}
        for outcome in outcomes:
            for counts in (getattr(outcome.result, kind) if outcome.result else {}).values():
                for reason, count in counts.items():
                    tally[reason] = tally.get(reason, 0) + count
        return tally

    def rows(self) -> list[tuple[str, str, str, int, str, int, int]]:
        """Return (adapter, quantity, verdict, tests, worst ratio, not applicable, known divergences) rows.

        The ratio is over what was asserted; the last two count cases.
        """
        rows = []
        for (spec, row), outcomes in self._groups().items():
            kinds = {outcome.outcome for outcome in outcomes}
            verdict = "FAIL" if "failed" in kinds else "pass" if "passed" in kinds else "skipped"
            ratios = [ratio for outcome in outcomes if outcome.result for ratio in outcome.result.worst_ratios.values()]
            rows.append((spec, row, verdict, len(outcomes), f"{max(ratios):.3g}" if ratios else "-",
                         sum(self._tally(outcomes, "not_applicable").values()),
                         sum(self._tally(outcomes, "known_divergences").values())))
        return rows

    def explanations(self) -> list[str]:
        """Return per adapter why cases were not applicable and which conventions showed, most cases first."""
        lines = []
        for kind, what in (("not_applicable", "not applicable"), ("known_divergences", "known divergence")):
            by_adapter: dict[str, Counter] = {}
            for (spec, _), outcomes in self._groups().items():
                by_adapter.setdefault(spec, Counter()).update(self._tally(outcomes, kind))
            for spec, reasons in by_adapter.items():
                if reasons:
                    lines.append(f"{spec}: {sum(reasons.values())} case(s) {what}, over all quantities:")
                    lines += [f"  {count:>6}  {reason}" for reason, count in reasons.most_common()]
        return lines

    def causes(self) -> list[Cause]:
        """Return the failures grouped by cause, in the order they were first seen."""
        causes: dict[tuple, Cause] = {}
        for outcome in self.outcomes.values():
            if outcome.outcome != "failed":
                continue
            failure = outcome.result.failure if outcome.result and outcome.result.failure else None
            if failure is None:
                failure = {"adapter": outcome.adapter, "message": outcome.reason or "failed", "repro": None}
            if failure.get("array"):  # a value out of tolerance: its quantity, array and (shrunk) network
                key = (failure["adapter"], failure["quantity"], failure["array"], failure["network"])
            else:  # an exception, or a failure outside a comparison: the same error anywhere is one cause
                key = (failure["adapter"], failure.get("error"), failure["message"].splitlines()[0])
            cause = causes.setdefault(key, Cause(key, failure))
            cause.tests.append(short_test_id(outcome.nodeid, outcome.adapter))
            if failure.get("repro") and len(failure["repro"]) < len(cause.failure.get("repro") or "x" * 10**9):
                cause.failure = failure  # keep the smallest repro of the cause
        return list(causes.values())

    def records(self) -> list[dict[str, Any]]:
        """Return the JSON records: one per test and quantity it asserted (one per test when none)."""
        records = []
        for outcome in self.outcomes.values():
            result = outcome.result
            failure = result.failure if result else None
            seen = {*result.worst_ratios, *result.not_applicable, *result.known_divergences} if result else set()
            quantities = sorted(seen) or [outcome.row]
            if failure and failure.get("quantity") and failure["quantity"] not in quantities:
                quantities.append(failure["quantity"])
            for quantity in quantities:
                failed_here = outcome.outcome == "failed" and (
                    failure is None or failure.get("quantity") in (None, quantity)
                )
                ratio = result.worst_ratios.get(quantity) if result else None
                records.append({
                    "test": outcome.nodeid,
                    "adapter": outcome.adapter,
                    "quantity": quantity,
                    "not_applicable": result.not_applicable.get(quantity, {}) if result else {},
                    "known_divergences": result.known_divergences.get(quantity, {}) if result else {},
                    "verdict": "fail" if failed_here else "skipped" if outcome.outcome == "skipped" else "pass",
                    "worst_ratio": ratio if ratio is None or ratio != float("inf") else None,
                    "message": failure["message"] if failed_here and failure else outcome.reason,
                    "case": failure.get("case") if failed_here and failure else None,
                    "diagnosis": failure.get("diagnosis") if failed_here and failure else None,
                })
        return records


def json_document(plugin: SummaryPlugin, settings: dict[str, Any], status: int) -> bytes:
    """Return the ``--json`` file's bytes: the run's settings, its exit status and every record."""
    document = {"settings": settings, "exit_status": status, "records": plugin.records()}
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")
