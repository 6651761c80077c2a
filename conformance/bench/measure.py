"""The bench's parent side: workers interleaved on a size, and the environment the numbers depend on.

How the numbers are taken, on a machine that may be shared and noisy: each
implementation runs in its own worker process (``bench.worker``), so that
no library's thread pool competes with another's; the workers take turns
round-robin (the first one rotating every round), each turn a batch of
steps long enough to time, after a pause that lets the previous worker's
threads go idle and untimed steps that wake the worker's own. The report
gives medians with their quartiles. Ratios are reference / fastest float64
framework of the same thread group: of the medians, and the median of the
per-round ratios (a round's samples are taken seconds apart, so slow
phases of the machine hit both sides).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from backprop_conformance.bench.peaks import own_kernels_environment
from backprop_conformance.bench.plan import (
    CORETYPE_VARIABLE,
    PACKAGES,
    SETTLE_SECONDS,
    THREAD_GROUPS,
    WARM_SECONDS,
    BenchSize,
    Implementation,
    step_flops,
)
from backprop_conformance.common.machine import blas, cpu_name, openblas, package_version

#: What a worker process runs (``python -m``).
WORKER_MODULE = "backprop_conformance.bench.worker"


class WorkerError(RuntimeError):
    """A worker process failed to start or to answer."""


class Worker:
    """The parent's handle on a ``serve`` process: start it, ask it for timed batches, stop it."""

    def __init__(self, size: BenchSize, implementation: Implementation) -> None:
        self.name = implementation.name
        environment_ = own_kernels_environment() if implementation.own_kernels else dict(os.environ)
        command = [sys.executable, "-m", WORKER_MODULE, "--worker", size.name, implementation.name]
        if implementation.one_core:
            environment_ |= ONE_CORE_ENVIRONMENT
            command += ["--cpu", str(one_core_cpu())]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=environment_
        )
        self.ready: dict = {}
        self.has_imported = False

    def wait_for_imports(self) -> None:
        """Return once the worker has imported what it needs (once: later calls return at once)."""
        if not self.has_imported:
            self._answer()
            self.has_imported = True

    def build(self) -> dict:
        """Wait for the worker's imports, let it build and warm up; return what it reports."""
        self.wait_for_imports()
        self.process.stdin.write("build\n")
        self.process.stdin.flush()
        self.ready = self._answer()
        return self.ready

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=60)
            self.log.seek(0)
            lines = self.log.read().strip().splitlines()
            raise WorkerError(f"{self.name}: {lines[-1] if lines else f'exit status {self.process.returncode}'}")
        return json.loads(line)

    def run(self, count: int, warm: int = 0) -> dict:
        """Return the worker's timing of ``count`` steps, taken after ``warm`` untimed ones."""
        self.process.stdin.write(f"{count} {warm}\n")
        self.process.stdin.flush()
        return self._answer()

    def close(self) -> None:
        """End the worker: it stops when its stdin closes."""
        if self.log.closed:
            return
        if self.process.stdin and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:  # it has died already
                pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


#: One thread for NumPy's OpenBLAS (and an MKL build's) and torch's OpenMP pool. XLA has no
#: such switch that still works (jax-ml/jax#1539): it sizes its pool from the CPU affinity,
#: which ``--cpu`` sets for every one-core worker.
ONE_CORE_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def one_core_cpu() -> int:
    """Return the CPU the one-core workers are pinned to: the last this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(os.sched_getaffinity(0))
    return 0


def quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return the first quartile, the median and the third quartile."""
    if len(samples) == 1:
        return samples[0], samples[0], samples[0]
    first, _, third = statistics.quantiles(samples, n=4, method="inclusive")
    return first, statistics.median(samples), third


def time_size(
    size: BenchSize,
    implementations: Sequence[Implementation],
    repeats: int,
    sample_seconds: float,
    settle_seconds: float = SETTLE_SECONDS,
    warm_seconds: float = WARM_SECONDS,
) -> dict:
    """Return the timings of every implementation on one size, each in its own process, interleaved.

    The workers import side by side, then build and warm up one after the
    other (so that compilation and memory are measured without the others
    busy), then take turns round-robin, the first one rotating, each turn
    after a pause of ``settle_seconds`` and ``warm_seconds`` of untimed steps.
    """
    started: dict[str, Worker] = {}
    workers: dict[str, Worker] = {}
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    try:
        for implementation in implementations:
            started[implementation.name] = Worker(size, implementation)
        for worker in started.values():
            # Every import done before any worker warms up and calibrates its sample (on a step timed while
            # torch and jax were still importing beside it, a reference worker took one-step samples).
            try:
                worker.wait_for_imports()
            except WorkerError:
                pass  # build says so below
        for implementation in implementations:
            worker = started[implementation.name]
            try:
                ready = worker.build()
            except WorkerError as error:
                errors[implementation.name] = str(error)
                continue
            workers[implementation.name] = worker
            results[implementation.name] = {
                "family": implementation.family,
                "dtype": implementation.dtype,
                "threads": "one core" if implementation.one_core else "default",
                "group": implementation.group,
                "own_kernels": implementation.own_kernels,
                **{key: value for key, value in ready.items() if key != "warm_step_seconds"},
                "steps_per_sample": max(1, math.ceil(sample_seconds / max(ready["warm_step_seconds"], 1e-9))),
                "warm_steps": math.ceil(warm_seconds / max(ready["warm_step_seconds"], 1e-9)),
                "samples": [],
                "cpu_per_wall": [],
                "page_faults_per_step": [],
            }
        names = list(workers)
        for round_index in range(repeats):
            offset = round_index % len(names)
            for name in names[offset:] + names[:offset]:
                time.sleep(settle_seconds)
                answer = workers[name].run(results[name]["steps_per_sample"], results[name]["warm_steps"])
                results[name]["samples"].append(answer["seconds_per_step"])
                results[name]["cpu_per_wall"].append(answer["cpu_per_wall"])
                results[name]["page_faults_per_step"].append(answer["page_faults_per_step"])
    finally:
        for worker in started.values():
            worker.close()
    flops = step_flops(size.network, size.batch)
    for result in results.values():
        first, median, third = quartiles(result["samples"])
        result.update(median=median, q1=first, q3=third, gflops=flops / median / 1e9)
    return {
        "name": size.name,
        "kind": size.kind,
        "network": size.network.describe(),
        "batch": size.batch,
        "flops_per_step": flops,
        "implementations": results,
        "errors": errors,
        "ratios": {group: _ratios(results, group) for group in THREAD_GROUPS},
    }


def _ratios(results: dict, threads: str) -> dict:
    """Return reference / fastest float64 framework among implementations with the same ``threads``."""
    group = {name: result for name, result in results.items() if result.get("group", result["threads"]) == threads}
    frameworks = [name for name, r in group.items() if r["family"] != "reference" and r["dtype"] == "float64"]
    if not frameworks:
        return {}
    fastest = min(frameworks, key=lambda name: group[name]["median"])
    ratios: dict[str, Any] = {"fastest_float64_framework": fastest}
    for name, reference in group.items():
        if reference["family"] != "reference":
            continue
        per_round = [ours / theirs for ours, theirs in zip(reference["samples"], group[fastest]["samples"])]
        first, median, third = quartiles(per_round)
        ratios[name] = {
            "of_medians": reference["median"] / group[fastest]["median"],
            "per_round_median": median,
            "per_round_q1": first,
            "per_round_q3": third,
            "versus": {framework: reference["median"] / group[framework]["median"] for framework in frameworks},
        }
    return ratios


def environment(timed: Sequence[dict] = ()) -> dict:
    """Return what the numbers depend on: versions, BLAS, threads, CPU.

    torch's thread count is the one its default-thread workers reported in
    ``timed``: this process need not import torch.
    """
    library = openblas()
    threads: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy_openblas": None if library is None else library["num_threads"],
        "environment_variables": {
            name: os.environ[name]
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", CORETYPE_VARIABLE)
            if name in os.environ
        },
    }
    kernels = {}
    for size in timed:
        for name, result in size["implementations"].items():
            if result["family"] == "torch" and result["threads"] == "default":
                threads["torch_intra_op"] = result["thread_counts"]["torch_intra_op"]
            if result["family"] == "reference":
                kernels[name] = result["thread_counts"]["openblas_kernels"]
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "versions": {name: package_version(name) for name in PACKAGES},
        "numpy_blas": blas(),
        "openblas": library,
        "openblas_kernels_by_implementation": kernels,
        "threads": threads,
    }
