"""The bench's judgement of its targets (``conformance.targets``) and performance.md's rendering.

A synthetic document, built like the one ``backprop bench`` measures, pins
down which rows are targets and which context, and which peak each
implementation's GFLOP/s is set against.
"""

from __future__ import annotations

import pytest

from backprop_conformance.bench import measure, plan
from backprop_conformance.bench.render import render_markdown
from backprop_conformance.bench.targets import targets

PINNED_TRAIN = plan.REFERENCE_TRAIN
OWN_TRAIN = plan.REFERENCE_TRAIN + plan.OWN_KERNELS
JAX64 = "jax.jit float64"


def _result(family, median_ms, own_kernels=False, dtype="float64", threads="default", kernels="Haswell"):
    seconds = median_ms / 1e3
    return {
        "family": family, "dtype": dtype, "threads": threads, "own_kernels": own_kernels,
        "samples": [seconds, seconds, seconds], "median": seconds, "q1": seconds, "q3": seconds,
        "gflops": 4.31e9 / seconds / 1e9, "cpu_per_wall": [1.0], "page_faults_per_step": [0.0],
        "thread_counts": {"openblas_kernels": kernels if family == "reference" else None},
    }


def _large_size(pinned_ms, own_ms, public_ms, jax_ms):
    results = {
        PINNED_TRAIN: _result("reference", pinned_ms),
        OWN_TRAIN: _result("reference", own_ms, own_kernels=True, kernels="SkylakeX"),
        plan.REFERENCE_PUBLIC: _result("reference", public_ms),
        JAX64: _result("jax", jax_ms),
    }
    size = {"name": "1024-1024-1024-1024-10, batch 256", "kind": "large", "network": "n", "batch": 256,
            "flops_per_step": int(4.31e9), "implementations": results, "errors": {}}
    size["ratios"] = {group: measure._ratios(results, group) for group in plan.THREAD_GROUPS}
    return size


def _document(size):
    peak = {"best_gflops": 110.0, "median_gflops_before": 105.0, "median_gflops_after": 108.0}
    own_peak = {"best_gflops": 176.0, "median_gflops_before": 170.0, "median_gflops_after": 175.0}
    document = {
        "command": "backprop bench", "generated": "2026-12-01 20:00 UTC", "quick": False, "repeats": 3,
        "sample_seconds": 0.06, "settle_seconds": 0.25, "learning_rate": plan.LEARNING_RATE,
        "environment": {
            "python": "3.11.7", "platform": "Linux", "cpu": "AMD EPYC",
            "versions": {"numpy": "2.4.6", "torch": None, "jax": "0.10.2"},
            "openblas": {"version": "0.3.31", "architecture": "Haswell", "num_threads": 2},
            "openblas_kernels_by_implementation": {PINNED_TRAIN: "Haswell", OWN_TRAIN: "SkylakeX"},
            "threads": {"cpu_count": 2, "numpy_openblas": 2,
                        "environment_variables": {plan.CORETYPE_VARIABLE: "Haswell"}},
        },
        "unavailable": {}, "load_average_before": [0.1, 0.1, 0.1], "load_average_after": [0.1, 0.1, 0.1],
        "matmul_peak": {"matrix_size": 2048, "repeats": 6, "numpy_float64": peak,
                        "numpy_float64" + plan.OWN_KERNELS: own_peak},
        "sizes": [size], "suite": None,
    }
    document["targets"] = targets(document)
    return document


def test_the_train_steps_and_the_public_sgd_step_are_the_targets():
    checks = {check["reference"]: check for check in _document(_large_size(45.0, 30.0, 63.0, 33.0))["targets"]}
    assert set(checks) == {PINNED_TRAIN, OWN_TRAIN, plan.REFERENCE_PUBLIC}
    assert checks[PINNED_TRAIN]["ratio"] == pytest.approx(45.0 / 33.0)
    assert not checks[PINNED_TRAIN]["met"] and not checks[PINNED_TRAIN]["context"]
    assert checks[OWN_TRAIN]["met"] and not checks[OWN_TRAIN]["context"]
    assert not checks[plan.REFERENCE_PUBLIC]["met"] and not checks[plan.REFERENCE_PUBLIC]["context"]
    assert all(check["against"] == JAX64 for check in checks.values())


def test_a_ratio_at_the_target_meets_it_and_just_above_does_not():
    at = _document(_large_size(33.0 * plan.LARGE_SIZE_TARGET, 30.0, 63.0, 33.0))["targets"]
    above = _document(_large_size(33.0 * plan.LARGE_SIZE_TARGET * 1.001, 30.0, 63.0, 33.0))["targets"]
    assert next(c for c in at if c["reference"] == PINNED_TRAIN)["met"]
    assert not next(c for c in above if c["reference"] == PINNED_TRAIN)["met"]


def test_performance_md_marks_context_says_which_kernels_ran_and_picks_each_rows_peak():
    markdown = render_markdown(_document(_large_size(45.0, 30.0, 63.0, 33.0)))
    assert f"| {PINNED_TRAIN} | {JAX64} | <= 1.15x | 1.36 |" in markdown
    context_row = f"| {plan.REFERENCE_PUBLIC} | {JAX64} | <= 1.15x | 1.91 | [1.91, 1.91, 1.91] | **no** |"
    assert context_row in markdown
    assert f"this environment sets {plan.CORETYPE_VARIABLE}=Haswell" in markdown and "(SkylakeX)" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| 1024") and "GFLOP" not in line
               and "%" in line)
    # The pinned train step (95.8 GFLOP/s) against the pinned peak (110), the rest against the own-kernel one (176).
    assert "95.8 (87%)" in row and "144 (82%)" in row and "131 (74%)" in row


def test_every_worker_has_imported_before_the_first_one_warms_up_and_calibrates(monkeypatch):
    # A reference worker imports NumPy in a moment; timed while torch and jax still imported beside it,
    # its warm step came out slow and it took one-step samples (784 sgd_step at 3.6x in one report).
    events = []

    class Recording:
        def __init__(self, size, implementation):
            self.name, self.has_imported = implementation.name, False

        def wait_for_imports(self):
            if not self.has_imported:
                events.append("imported")
                self.has_imported = True

        def build(self):
            self.wait_for_imports()
            events.append("build")
            return {"warm_step_seconds": 0.001}

        def run(self, count, warm=0):
            events.append(("run", count, warm))
            return {"seconds_per_step": 0.001, "cpu_per_wall": 1.0, "page_faults_per_step": 0.0}

        def close(self):
            pass

    monkeypatch.setattr(measure, "Worker", Recording)
    implementations = [plan.implementation_named(name) for name in (plan.REFERENCE_PUBLIC, "torch eager float64")]
    timed = measure.time_size(plan.SIZES[0], implementations, repeats=1, sample_seconds=0.01, settle_seconds=0.0,
                              warm_seconds=0.05)
    assert events.index("build") >= len(implementations) and events.count("build") == len(implementations)
    assert timed["implementations"][plan.REFERENCE_PUBLIC]["steps_per_sample"] == 10
    # every sample after untimed steps (50 ms of 1 ms steps): a pool idle through the pause wakes first
    assert [event for event in events if event[0] == "run"] == [("run", 10, 50)] * len(implementations)


def test_what_each_adam_update_costs_is_its_adam_step_less_its_plain_step():
    size = _large_size(50.0, 40.0, 52.0, 45.0)
    size["implementations"] |= {plan.REFERENCE_ADAM_TRAIN: _result("reference", 77.5),
                                "jax.jit adam float64": _result("jax", 58.0)}
    lines = render_markdown(_document(size)).splitlines()
    header = lines.index(next(line for line in lines if line.startswith("| size | reference train step adam - ")))
    assert lines[header].split(" | ")[1:] == ["reference train step adam - train step",
                                              "jax.jit adam float64 - jax.jit float64 |"]
    assert lines[header + 2] == "| 1024-1024-1024-1024-10, batch 256 | 27.5 | 13 |"


def test_adam_held_to_one_core_is_judged_against_one_core_adam_alone_and_as_context():
    size = _large_size(50.0, 40.0, 52.0, 45.0)
    one_core = {"threads": "one core", "group": "adam, one core"}
    size["implementations"] |= {
        plan.REFERENCE_ADAM_TRAIN: _result("reference", 60.0) | {"group": "adam"},
        "jax.jit adam float64": _result("jax", 50.0) | {"group": "adam"},
        plan.REFERENCE_ADAM_TRAIN + plan.ONE_CORE: _result("reference", 90.0) | one_core,
        "jax.jit adam float64" + plan.ONE_CORE: _result("jax", 100.0) | one_core,
    }
    size["ratios"] = {group: measure._ratios(size["implementations"], group) for group in plan.THREAD_GROUPS}
    checks = {check["reference"]: check for check in _document(size)["targets"]}
    held = checks[plan.REFERENCE_ADAM_TRAIN + plan.ONE_CORE]
    assert held["against"] == "jax.jit adam float64" + plan.ONE_CORE and held["ratio"] == pytest.approx(0.9)
    assert held["met"] and held["context"]
    default = checks[plan.REFERENCE_ADAM_TRAIN]  # the target: default threads, against default threads only
    assert default["against"] == "jax.jit adam float64" and default["ratio"] == pytest.approx(1.2)
    assert not default["met"] and not default["context"]
    assert plan.implementation_named(plan.REFERENCE_ADAM_TRAIN + plan.ONE_CORE).group == "adam, one core"
