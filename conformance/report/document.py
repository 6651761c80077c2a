"""The report's third stage, document: the records summarised, with where and how they were made.

``build_document`` returns what becomes agreement.json (its schema:
``schema.json`` beside this module): the environment, the command that
regenerates the sweep, the tolerance model's constants, the networks, every
record and one summary per adapter.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backprop_conformance.adapters.protocol import DTYPES, Adapter
from backprop_conformance.common.machine import blas, cpu_name, openblas, package_version, simd_features
from backprop_conformance.report.cases import SweepCase, describe_network
from backprop_conformance.report.records import TRAINING_FIGURE_EXAMPLE, VERDICTS, LoadedAdapter
from backprop_conformance.suite.comparisons import MAX_TRAINING_MAGNITUDE, QUANTITIES
from backprop_conformance.suite.tolerances import SAFETY, unit_roundoff

REGENERATE = "make report"
JSON_FILE, MARKDOWN_FILE, HTML_FILE = "agreement.json", "agreement.md", "agreement.html"
#: The JSON Schema of agreement.json.
REPORT_SCHEMA = Path(__file__).with_name("schema.json")
FIGURE_FILES = {
    "distribution": "error-distribution.png",
    "size": "error-by-size.png",
    "training": "training-curves-002.png",
    "optimizers": "optimizer-trajectories.png",
}


def _counts(records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Return how many records have each verdict (every verdict present, zeros included)."""
    return {verdict: sum(r["verdict"] == verdict for r in records) for verdict in VERDICTS}


def worst_record(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the record with the largest finite ratio (the first among equals), or None."""
    measured = [r for r in records if r["worst_ratio"] is not None]
    return max(measured, key=lambda r: r["worst_ratio"]) if measured else None


def summarise(records: Sequence[dict[str, Any]], adapters: Sequence[LoadedAdapter]) -> list[dict[str, Any]]:
    """Return one summary per loaded adapter: verdict counts, and per quantity counts and worst ratio."""
    summary = []
    for loaded in adapters:
        if loaded.adapter is None:
            continue
        mine = [r for r in records if r["adapter"] == loaded.spec]
        quantities = {}
        for quantity in QUANTITIES:
            these = [r for r in mine if r["quantity"] == quantity]
            if not these:
                continue
            worst = worst_record(these)
            quantities[quantity] = {
                "counts": _counts(these),
                "worst_ratio": worst["worst_ratio"] if worst else None,
                "worst_network": worst["network"] if worst and worst["worst_ratio"] > 0 else None,
            }
        summary.append({
            "adapter": loaded.spec,
            "label": loaded.label,
            "dtype": loaded.adapter.dtype,
            "counts": _counts(mine),
            "quantities": quantities,
        })
    return summary


def _device(adapter: Adapter) -> str:
    """Return where the adapter computes: its ``device``, JAX's default device, or the CPU."""
    implementation = adapter.implementation
    device = getattr(implementation, "device", None)
    if device is not None:
        return str(device)
    if type(implementation).__module__.endswith("adapters.jax_adapter"):
        import jax

        first = jax.devices()[0]
        kind = str(first.device_kind)
        return first.platform if kind.lower() == first.platform.lower() else f"{first.platform} ({kind})"
    return "cpu (numpy)" if adapter.name == "reference" else "unknown"


def _implementation_text(implementation: Any) -> str:
    """Return the implementation's own repr, or its class path (object's repr holds an address)."""
    kind = type(implementation)
    if kind.__repr__ is object.__repr__:
        return f"{kind.__module__}.{kind.__qualname__}"
    return repr(implementation)


def _adapter_environment(loaded: LoadedAdapter) -> dict[str, Any]:
    """Return an adapter's entry in the environment: status, dtype, device and matmul precision."""
    if loaded.adapter is None:
        return {"spec": loaded.spec, "status": "unavailable", "reason": loaded.reason}
    implementation = loaded.adapter.implementation
    return {
        "spec": loaded.spec,
        "status": "available",
        "label": loaded.adapter.label,
        "dtype": loaded.adapter.dtype,
        "implementation": _implementation_text(implementation),
        "device": _device(loaded.adapter),
        "matmul_precision": getattr(implementation, "matmul_precision", None),
        "provides": [m for m in ("forward", "sgd_step", "train") if loaded.adapter.supports(m)],
    }


def _framework_defaults() -> dict[str, Any]:
    """Return the frameworks' global float32 matmul settings (which the adapters override per call)."""
    defaults: dict[str, Any] = {}
    if "torch" in sys.modules:
        defaults["torch.get_float32_matmul_precision"] = sys.modules["torch"].get_float32_matmul_precision()
    if "jax" in sys.modules:
        value = sys.modules["jax"].config.jax_default_matmul_precision
        defaults["jax_default_matmul_precision"] = None if value is None else str(value)
    return defaults


def environment(adapters: Sequence[LoadedAdapter]) -> dict[str, Any]:
    """Return where the report was made: versions, platform, CPU, BLAS, devices, matmul precisions."""
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in ("numpy", "torch", "jax", "jaxlib", "optax")},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_features": simd_features(),
        "numpy_blas": blas(),
        "numpy_openblas": openblas(),
        "framework_matmul_defaults": _framework_defaults(),
        "adapters": [_adapter_environment(loaded) for loaded in adapters],
    }


def tolerance_model() -> dict[str, Any]:
    """Return the tolerance model's constants, as the report states them."""
    return {
        "safety": SAFETY,
        "unit_roundoff": {dtype: unit_roundoff(dtype) for dtype in DTYPES},
        "max_training_magnitude": MAX_TRAINING_MAGNITUDE,
        "pass_when": "worst |diff| / (safety x first-order error bound) <= 1, for every entry",
    }


def command_line(adapters: Sequence[str], dtypes: Sequence[str], seed: int, examples: int) -> str:
    """Return the ``backprop report`` command that regenerates this sweep (``--out`` aside)."""
    options = " ".join(f"--adapter {spec}" for spec in adapters)
    return f"backprop report {options} --dtypes {','.join(dtypes)} --seed {seed} --examples {examples}"


def build_document(
    adapters: Sequence[LoadedAdapter],
    cases: Sequence[SweepCase],
    records: list[dict[str, Any]],
    settings: dict[str, Any],
    curves: dict[str, list[float]],
    optimizers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the agreement.json document: environment first, then the sweep, records and summary, and the
    optimizer comparison (``report.optimizers``) when it was made."""
    return {
        "environment": environment(adapters),
        "regenerate": REGENERATE,
        "command": command_line(settings["adapters"], settings["dtypes"], settings["seed"], settings["examples"]),
        "settings": settings,
        "tolerance_model": tolerance_model(),
        "networks": [describe_network(sweep_case) for sweep_case in cases],
        "records": records,
        "summary": summarise(records, adapters),
        "training_curves": {"network": f"doc-{TRAINING_FIGURE_EXAMPLE}", "losses": curves},
        "figures": list(FIGURE_FILES.values()),
        **({} if optimizers is None else {"optimizers": optimizers}),
    }
