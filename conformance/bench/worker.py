"""The bench's worker: one implementation at one size, in its own process, timed on request.

``python -m backprop_conformance.bench.worker --worker SIZE IMPLEMENTATION
[--cpu N]`` is what ``bench.measure.Worker`` starts; it speaks JSON lines
(``serve``).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import sys
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from backprop_conformance.bench.plan import (
    LEARNING_RATE,
    MEMORY_PROBE_STEPS,
    SIZES,
    bench_data,
    expected_params,
    implementation_named,
)
from backprop_conformance.common.machine import openblas
from backprop_conformance.reference.oracles import worst_relative_error


def _minor_page_faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(stepper: Any, count: int) -> dict[str, float]:
    """Return the seconds per step of ``count`` steps (garbage collector off), with the process's
    CPU seconds per wall second and its minor page faults per step (fresh memory touched)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        faults, cpu, start = _minor_page_faults(), time.process_time(), time.perf_counter()
        stepper.steps(count)
        wall = time.perf_counter() - start
        return {
            "seconds_per_step": wall / count,
            "cpu_per_wall": (time.process_time() - cpu) / wall,
            "page_faults_per_step": (_minor_page_faults() - faults) / count,
        }
    finally:
        if enabled:
            gc.enable()


def _memory_status(field: str) -> int | None:
    """Return ``VmRSS`` or ``VmHWM`` (peak RSS) of this process in bytes, from /proc (Linux), or None."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset this process's peak RSS to its current RSS (Linux >= 4.0); return whether that worked."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def _traced_step_peak(stepper: Any) -> int:
    """Return the most bytes NumPy held at once during one step, beyond what was live before it.

    NumPy reports its array buffers to ``tracemalloc``.
    """
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stepper.steps(1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def _thread_counts(family: str) -> dict[str, Any]:
    """Return the thread settings this process computes with."""
    library = openblas()
    counts: dict[str, Any] = {
        "numpy_openblas": None if library is None else library["num_threads"],
        "openblas_kernels": None if library is None else library["architecture"],
    }
    if hasattr(os, "sched_getaffinity"):
        counts["cpus"] = sorted(os.sched_getaffinity(0))
    if family == "torch":
        import torch

        counts["torch_intra_op"] = torch.get_num_threads()
    if family == "jax":
        counts["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return counts


def serve(size_name: str, implementation_name: str, protocol: Any, commands: Any) -> None:
    """Serve one implementation at one size to the parent ``bench`` process, JSON lines on ``protocol``.

    One line once the imports are done; then, after a line from the parent,
    one line about the setup: the first step's seconds (jax compiles
    there), agreement with ``reference.sgd_step`` after it, the growth of
    peak RSS from after the imports and data to after ``MEMORY_PROBE_STEPS``
    more steps, tracemalloc's or XLA's view of a step's memory, and a warm
    step's time. Then, for each line ``k w`` read from ``commands``, ``w``
    untimed steps, ``k`` timed ones and one line with their time per step.
    """
    size = next(s for s in SIZES if s.name == size_name)
    implementation = implementation_named(implementation_name)
    if implementation.family != "reference":
        importlib.import_module(implementation.family)  # before the RSS baseline: the import is not the step's
    params, x, y = bench_data(size)
    expected = expected_params(implementation, size.network, params, x, y)
    print(json.dumps({"imported": True}), file=protocol, flush=True)
    if not commands.readline():  # the parent's go: workers import side by side, then build one at a time
        return
    # The peak is reset, or the imports' own transient peak would hide everything after them.
    peak_reset = _reset_peak_rss()
    baseline = _memory_status("VmRSS")
    started = time.perf_counter()
    stepper = implementation.build(size.network, params, x, y, LEARNING_RATE)
    stepper.steps(1)
    ready: dict[str, Any] = {"first_step_seconds": time.perf_counter() - started}
    # A benchmark of a wrong step is worthless: does it compute the reference's step?
    ready["agreement_after_one_step"] = worst_relative_error(stepper.params(), expected)
    stepper.steps(MEMORY_PROBE_STEPS)
    peak = _memory_status("VmHWM")
    ready["peak_rss_growth_bytes"] = peak - baseline if peak_reset and peak is not None and baseline else None
    if implementation.family == "reference":
        ready["traced_step_peak_bytes"] = _traced_step_peak(stepper)
    if implementation.family == "jax":
        ready["xla"] = stepper.compiled_memory()
    ready["thread_counts"] = _thread_counts(implementation.family)
    ready["warm_step_seconds"] = min(_timed(stepper, 1)["seconds_per_step"] for _ in range(3))
    print(json.dumps(ready), file=protocol, flush=True)
    for line in commands:
        count, _, warm = line.partition(" ")
        stepper.steps(int(warm or 0))  # untimed: its thread pool, idle through the parent's pause, wakes
        print(json.dumps(_timed(stepper, int(count))), file=protocol, flush=True)


def _serve_from_command_line(arguments: Sequence[str]) -> int:
    """Serve ``--worker SIZE IMPLEMENTATION [--cpu N]``: what ``bench.measure.Worker`` starts."""
    if len(arguments) not in (3, 5) or arguments[0] != "--worker" or arguments[3:4] not in ([], ["--cpu"]):
        print("usage: python -m backprop_conformance.bench.worker --worker SIZE IMPLEMENTATION [--cpu N] "
              "(started by `backprop bench`)", file=sys.stderr)
        return 2
    if len(arguments) == 5:  # before any framework is imported: XLA sizes its thread pool from this
        os.sched_setaffinity(0, {int(arguments[4])})
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints stays out of the protocol
    serve(arguments[1], arguments[2], protocol, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(_serve_from_command_line(sys.argv[1:]))
