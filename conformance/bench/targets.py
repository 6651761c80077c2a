"""The bench's judgement: which of its targets the measured ratios meet."""

from __future__ import annotations

from backprop_conformance.bench.measure import quartiles
from backprop_conformance.bench.plan import (
    LARGE_SIZE_TARGET,
    ONE_CORE,
    OWN_KERNELS,
    REFERENCE_ADAM_PUBLIC,
    REFERENCE_ADAM_TRAIN,
    REFERENCE_GRADIENTS,
    REFERENCE_PUBLIC,
    REFERENCE_TRAIN,
    THREAD_GROUPS,
)

#: The reference's steps judged at the large sizes, per group: the train step, under the environment's
#: kernels and OpenBLAS's own; the public sgd_step and loss_and_gradients as a user calls them; Adam's.
LARGE_SIZE_REFERENCES = {
    "default": (REFERENCE_TRAIN, REFERENCE_TRAIN + OWN_KERNELS, REFERENCE_PUBLIC, REFERENCE_GRADIENTS),
    "one core": tuple(name + ONE_CORE for name in (REFERENCE_TRAIN, REFERENCE_TRAIN + OWN_KERNELS, REFERENCE_PUBLIC)),
    "adam": (REFERENCE_ADAM_TRAIN, REFERENCE_ADAM_PUBLIC),
    "adam, one core": (REFERENCE_ADAM_TRAIN + ONE_CORE, REFERENCE_ADAM_PUBLIC + ONE_CORE),
}


def targets(document: dict) -> list[dict]:
    """Return the issue's targets, each with the numbers that decide it.

    Large sizes: the reference's train step within LARGE_SIZE_TARGET times
    the fastest float64 framework's, under the environment's OpenBLAS
    kernels and, where the environment names them, under OpenBLAS's own
    choice; the public sgd_step and loss_and_gradients, validated as a user
    calls them, against the same frameworks' whole step; Adam's steps
    (public and train) against torch's and optax's Adam. Seed sizes:
    reference.sgd_step faster than torch eager (float64). Judged on the
    libraries' default threads; the one-core groups are reported beside them
    as context.
    """
    checks = []
    for size in document["sizes"]:
        results = size["implementations"]
        for group in THREAD_GROUPS:
            ratios = size["ratios"].get(group) or {}
            suffix = ONE_CORE if group.endswith("one core") else ""
            if size["kind"] == "large":
                for name in LARGE_SIZE_REFERENCES[group]:
                    if name not in ratios:
                        continue
                    ratio = ratios[name]
                    checks.append({
                        "size": size["name"], "threads": group, "reference": name,
                        "against": ratios["fastest_float64_framework"], "target": f"<= {LARGE_SIZE_TARGET}x",
                        "ratio": ratio["of_medians"],
                        "per_round": [ratio["per_round_q1"], ratio["per_round_median"], ratio["per_round_q3"]],
                        "met": ratio["of_medians"] <= LARGE_SIZE_TARGET,
                        "context": bool(suffix),
                    })
            torch_name, public = "torch eager float64" + suffix, REFERENCE_PUBLIC + suffix
            if not group.startswith("adam") and size["kind"] == "seed" and torch_name in results and public in results:
                ours, theirs = results[REFERENCE_PUBLIC + suffix], results[torch_name]
                first, median, third = quartiles([a / b for a, b in zip(ours["samples"], theirs["samples"])])
                checks.append({
                    "size": size["name"], "threads": group, "reference": REFERENCE_PUBLIC + suffix,
                    "against": torch_name, "target": "< 1x", "ratio": ours["median"] / theirs["median"],
                    "per_round": [first, median, third], "met": ours["median"] < theirs["median"],
                    "context": bool(suffix),
                })
    return checks
