"""The bench's judgement: which of its targets the measured ratios meet."""

from __future__ import annotations

from backprop_conformance.bench.measure import quartiles
from backprop_conformance.bench.plan import (
    LARGE_SIZE_TARGET,
    ONE_CORE,
    OWN_KERNELS,
    REFERENCE_PUBLIC,
    REFERENCE_TRAIN,
    THREAD_GROUPS,
)


def targets(document: dict) -> list[dict]:
    """Return the issue's targets, each with the numbers that decide it.

    Large sizes: the reference's train step within LARGE_SIZE_TARGET times
    the fastest float64 framework's, under the environment's OpenBLAS
    kernels and, where the environment names them, under OpenBLAS's own
    choice. Seed sizes: reference.sgd_step faster than torch eager
    (float64). Judged on the libraries' default threads; the one-core group,
    and sgd_step at the large sizes (which copies its arguments every call),
    are reported beside them as context.
    """
    checks = []
    for size in document["sizes"]:
        results = size["implementations"]
        for group in THREAD_GROUPS:
            ratios = size["ratios"].get(group) or {}
            suffix = ONE_CORE if group == "one core" else ""
            if size["kind"] == "large":
                for reference in (REFERENCE_TRAIN, REFERENCE_TRAIN + OWN_KERNELS, REFERENCE_PUBLIC):
                    name = reference + suffix
                    if name not in ratios:
                        continue
                    ratio = ratios[name]
                    checks.append({
                        "size": size["name"], "threads": group, "reference": name,
                        "against": ratios["fastest_float64_framework"], "target": f"<= {LARGE_SIZE_TARGET}x",
                        "ratio": ratio["of_medians"],
                        "per_round": [ratio["per_round_q1"], ratio["per_round_median"], ratio["per_round_q3"]],
                        "met": ratio["of_medians"] <= LARGE_SIZE_TARGET,
                        "context": bool(suffix) or name.startswith(REFERENCE_PUBLIC),
                    })
            torch_name = "torch eager float64" + suffix
            if size["kind"] == "seed" and torch_name in results and REFERENCE_PUBLIC + suffix in results:
                ours, theirs = results[REFERENCE_PUBLIC + suffix], results[torch_name]
                first, median, third = quartiles([a / b for a, b in zip(ours["samples"], theirs["samples"])])
                checks.append({
                    "size": size["name"], "threads": group, "reference": REFERENCE_PUBLIC + suffix,
                    "against": torch_name, "target": "< 1x", "ratio": ours["median"] / theirs["median"],
                    "per_round": [first, median, third], "met": ours["median"] < theirs["median"],
                    "context": bool(suffix),
                })
    return checks
