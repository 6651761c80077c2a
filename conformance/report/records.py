"""The report's second stage, records: every sweep case through every adapter and quantity.

A record is one network x adapter x quantity: its errors, its tolerance and
its verdict. A case outside the tolerance model is recorded as ``outside
model`` with the reason, an exception as ``error``; nothing stops the sweep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from backprop_conformance.adapters.boundary import DEFAULT_TIMEOUT
from backprop_conformance.adapters.loading import BUILTIN_ADAPTERS, load_adapter
from backprop_conformance.adapters.protocol import (
    Adapter,
    AdapterCallError,
    AdapterError,
    AdapterUnavailable,
    Unsupported,
)
from backprop_conformance.reference.seeds import example
from backprop_conformance.reference.training import train
from backprop_conformance.report.cases import SweepCase
from backprop_conformance.report.progress import progress as show_progress
from backprop_conformance.suite.assertions import Measurement
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import (
    OutsideModel,
    compare_forward,
    compare_loss_and_gradients,
    compare_sgd_step,
    compare_train,
)
from backprop_conformance.suite.diagnosis import diagnosis_text, explain_failure
from backprop_conformance.suite.repro import repro_snippet
from backprop_conformance.suite.variants import Variant

#: Names that expand to one built-in adapter per --dtypes entry.
FRAMEWORKS = ("torch", "jax")
VERDICTS = ("pass", "fail", "outside model", "error", "not applicable", "known divergence")
TRAINING_FIGURE_EXAMPLE = "002"
#: Each comparison, the quantities its measurements belong to, and the adapter call it makes.
COMPARISONS: tuple[tuple[Callable[[Adapter, Case], list[Measurement]], tuple[str, ...], str], ...] = (
    (compare_forward, ("output",), "forward"),
    (compare_loss_and_gradients, ("loss", "gradient"), "loss_and_gradients"),
    (compare_sgd_step, ("update",), "sgd_step"),
    (compare_train, ("trajectory",), "train"),
)
#: What the report checks when no --adapter is given (torch and jax expand to one adapter per dtype).
DEFAULT_ADAPTER_SPECS = ("torch", "jax")


@dataclass(frozen=True)
class LoadedAdapter:
    """A requested adapter spec: the Adapter, or why it cannot run here."""

    spec: str
    adapter: Adapter | None
    reason: str | None = None

    @property
    def label(self) -> str:
        """Return the adapter's label, or its spec when it did not load."""
        return self.adapter.label if self.adapter is not None else self.spec


def expand_specs(specs: Sequence[str], dtypes: Sequence[str]) -> list[str]:
    """Return the specs with ``torch``/``jax`` expanded to one built-in name per dtype, duplicates dropped."""
    expanded: list[str] = []
    for spec in specs:
        for name in [f"{spec}-{dtype}" for dtype in dtypes] if spec in FRAMEWORKS else [spec]:
            if name not in expanded:
                expanded.append(name)
    return expanded


def load_adapters(specs: Sequence[str], timeout: float | None = DEFAULT_TIMEOUT) -> list[LoadedAdapter]:
    """Return every spec loaded, each call limited to ``timeout`` seconds, or with the reason it is unavailable.

    A built-in adapter that is missing its framework, or broken, is recorded
    as unavailable; a ``package.module:attribute`` or entry point that does
    not satisfy the protocol raises AdapterError (a usage error).
    """
    loaded = []
    for spec in specs:
        try:
            adapter = load_adapter(spec)
            adapter.timeout = timeout
            loaded.append(LoadedAdapter(spec, adapter))
        except AdapterUnavailable as reason:
            loaded.append(LoadedAdapter(spec, None, str(reason)))
        except AdapterError as error:
            if spec not in BUILTIN_ADAPTERS:
                raise
            loaded.append(LoadedAdapter(spec, None, f"built-in adapter is broken: {error}"))
        except Exception as error:  # a broken adapter module must not stop the report
            loaded.append(LoadedAdapter(spec, None, f"failed to load: {type(error).__name__}: {error}"))
    return loaded


def _number(value: float) -> float | None:
    """Return ``value`` as a JSON number, or None when it is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def _record(
    sweep_case: SweepCase,
    loaded: LoadedAdapter,
    quantity: str,
    call: str,
    verdict: str,
    measurements: Sequence[Measurement] = (),
    message: str | None = None,
    diagnosis: tuple[list[Variant], Variant | None] = ([], None),
) -> dict[str, Any]:
    """Return one record: a network x adapter x quantity, its errors, tolerance, verdict and diagnosis.

    ``diagnosis``: the variants a failing comparison matched, and the
    adapter's declared convention among them, which makes a failing
    quantity a known divergence.
    """
    mine = [m for m in measurements if m.quantity == quantity]
    worst = max(mine, key=lambda m: m.ratio) if mine else None
    failing = [m for m in mine if not m.passed]
    found, convention = diagnosis
    names = None
    if failing:
        message = max(failing, key=lambda m: m.ratio).message
        names = [variant.name for variant in found] or None
        if convention is not None:
            verdict, message = "known divergence", f"known divergence: {convention.says()}; {message}"
        else:
            verdict = "fail"
            message = f"{message}; {diagnosis_text(found)}" if found else message
    assert loaded.adapter is not None
    return {
        "network": sweep_case.identifier,
        "description": sweep_case.case.network.describe(),
        "adapter": loaded.spec,
        "label": loaded.adapter.label,
        "dtype": loaded.adapter.dtype,
        "quantity": quantity,
        "call": call,
        "verdict": verdict,
        "max_abs_error": _number(max(m.max_abs_error for m in mine)) if mine else None,
        "max_relative_error": _number(max(m.relative_error for m in mine)) if mine else None,
        "worst_ratio": _number(worst.ratio) if worst else None,
        "tolerance": _number(worst.allowed) if worst else None,
        "worst_array": worst.name if worst else None,
        "arrays": len(mine),
        "message": message,
        "diagnosis": names,
        "repro": repro_snippet(sweep_case.case, loaded.spec, call) if verdict in ("fail", "error") else None,
    }


def compare_case(loaded: LoadedAdapter, sweep_case: SweepCase) -> list[dict[str, Any]]:
    """Return the records of one network through one adapter, every quantity it supports."""
    adapter = loaded.adapter
    assert adapter is not None
    records = []
    for compare, quantities, call in COMPARISONS:
        if call == "forward" and not adapter.supports("forward"):
            continue
        measurements, verdict, message, diagnosis = [], "pass", None, ([], None)
        try:
            reason = adapter.unsupported(sweep_case.case.network, call)
            if reason is not None:
                raise Unsupported(reason)
            measurements = compare(adapter, sweep_case.case)
            if any(not m.passed for m in measurements):  # only then: a passing comparison pays nothing
                diagnosis = explain_failure(sweep_case.case, call, adapter.dtype, measurements, adapter.conventions)
        except Unsupported as reason:
            verdict, message = "not applicable", str(reason)
        except OutsideModel as reason:
            verdict, message = "outside model", str(reason)
        except Exception as error:  # the report records an adapter's crash, it does not stop on it
            # An AdapterCallError names the adapter, the method and the error already.
            named = isinstance(error, AdapterCallError)
            verdict, message = "error", str(error) if named else f"{type(error).__name__}: {error}"
        records += [_record(sweep_case, loaded, q, call, verdict, measurements, message, diagnosis)
                    for q in quantities]
    return records


class SweepInterrupted(Exception):
    """The sweep was interrupted (Ctrl-C); ``records`` holds what was measured, ``runs`` of ``planned``."""

    def __init__(self, records: list[dict[str, Any]], runs: int, planned: int) -> None:
        super().__init__(f"interrupted after {runs} of {planned} network x adapter runs")
        self.records, self.runs, self.planned = records, runs, planned


def sweep(
    cases: Sequence[SweepCase], adapters: Sequence[LoadedAdapter], progress: str | None = None
) -> list[dict[str, Any]]:
    """Return the records of every case through every loaded adapter, in case then adapter order.

    On Ctrl-C, raises SweepInterrupted holding the records of the runs that finished.
    """
    usable = [loaded for loaded in adapters if loaded.adapter is not None]
    records: list[dict[str, Any]] = []
    runs, planned = 0, len(cases) * len(usable)
    try:
        with show_progress(progress, planned) as step:
            for sweep_case in cases:
                for loaded in usable:
                    done = step(f"{sweep_case.identifier} {loaded.label}")
                    records += compare_case(loaded, sweep_case)
                    runs += 1
                    done()
    except KeyboardInterrupt:
        raise SweepInterrupted(records, runs, planned) from None
    return records


def training_curves(adapters: Sequence[LoadedAdapter]) -> dict[str, list[float]]:
    """Return document 002's per-iteration training losses: the reference's and each adapter's ``train``."""
    document = example(TRAINING_FIGURE_EXAMPLE)
    arguments = (document.network, document.params, document.x, document.y, document.batches, document.learning_rate)
    curves = {"reference": [float(v) for v in train(*arguments).losses]}
    for loaded in adapters:
        if loaded.adapter is None or loaded.label in curves:
            continue
        try:
            curves[loaded.label] = [float(v) for v in loaded.adapter.train(*arguments).losses]
        except Exception:  # the error is already a record of the sweep
            continue
    return curves
