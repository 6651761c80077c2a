"""The state of one suite run in this process: the adapters loaded, and what each test measured.

The suite's conftest loads adapters through ``adapter_for`` (once per spec)
and tells ``start_test`` which test runs; ``suite.judge`` records into the
running test what it asserted (``record_ratio``) and, when a check fails,
the case and the cause (``record_failure``). ``backprop check`` reads it all
back (``results``) for its summary and its JSON. Only what was asserted is
recorded: a ratio measured but not judged never enters a summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backprop_conformance.adapters.loading import load_adapter
from backprop_conformance.adapters.protocol import Adapter, AdapterError, AdapterUnavailable
from backprop_conformance.suite.variants import BY_NAME


@dataclass
class TestResult:
    """What one test (one node id) asserted: per quantity its worst ratio, and the failing case, if any."""

    nodeid: str
    adapter: str
    worst_ratios: dict[str, float] = field(default_factory=dict)
    #: quantity -> {reason: count} of the cases the adapter declared it cannot do.
    not_applicable: dict[str, dict[str, int]] = field(default_factory=dict)
    #: quantity -> {convention: count} of the cases that differ from exact math by a declared convention.
    known_divergences: dict[str, dict[str, int]] = field(default_factory=dict)
    failure: dict[str, Any] | None = None


_LOADED: dict[str, Adapter | Exception] = {}
_RESULTS: dict[str, TestResult] = {}
_CURRENT: list[TestResult] = []


def adapter_for(spec: str) -> Adapter | Exception:
    """Return the Adapter for ``spec``, or the AdapterUnavailable / AdapterError it raised; loaded once."""
    if spec not in _LOADED:
        try:
            adapter = load_adapter(spec)
            unknown = sorted(set(adapter.conventions) - set(BY_NAME))
            if unknown:
                raise AdapterError(f"adapter {adapter.label!r} declares conventions {unknown} that are not in "
                                   f"suite.variants.CATALOGUE ({', '.join(BY_NAME)})")
            _LOADED[spec] = adapter
        except (AdapterUnavailable, AdapterError) as error:
            _LOADED[spec] = error
    return _LOADED[spec]


def loaded(spec: str) -> Adapter | Exception | None:
    """Return what ``adapter_for(spec)`` gave, without loading anything."""
    return _LOADED.get(spec)


def reset() -> None:
    """Forget every adapter and result (``backprop check`` calls it before a run)."""
    _LOADED.clear()
    _RESULTS.clear()
    _CURRENT.clear()


def start_test(nodeid: str, adapter: str) -> None:
    """Make ``nodeid`` the test that records go to, until ``end_test``."""
    _CURRENT[:] = [_RESULTS.setdefault(nodeid, TestResult(nodeid, adapter))]


def end_test() -> None:
    """Stop recording into the current test."""
    _CURRENT.clear()


def _current() -> TestResult | None:
    return _CURRENT[0] if _CURRENT else None


def record_ratio(quantity: str, ratio: float) -> None:
    """Record that ``quantity`` was judged with this worst |diff|/allowed (the worst one wins)."""
    result = _current()
    if result is not None:
        result.worst_ratios[quantity] = max(result.worst_ratios.get(quantity, 0.0), ratio)


def record_not_applicable(quantity: str, reason: str) -> None:
    """Record one case of ``quantity`` that the adapter declared it cannot do, and why."""
    result = _current()
    if result is not None:
        reasons = result.not_applicable.setdefault(quantity, {})
        reasons[reason] = reasons.get(reason, 0) + 1


def record_known_divergence(quantity: str, convention: str) -> None:
    """Record one case of ``quantity`` that differs from exact math by the adapter's declared ``convention``."""
    result = _current()
    if result is not None:
        counts = result.known_divergences.setdefault(quantity, {})
        counts[convention] = counts.get(convention, 0) + 1


def record_failure(failure: dict[str, Any]) -> None:
    """Record the failing check of the current test; the last one wins (Hypothesis replays the shrunk case last)."""
    result = _current()
    if result is not None:
        result.failure = failure


def results() -> dict[str, TestResult]:
    """Return every test's result by node id."""
    return dict(_RESULTS)
