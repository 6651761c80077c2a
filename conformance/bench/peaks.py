"""The machine's matmul peak, against which the bench sets every step's GFLOP/s, and NumPy's BLAS kernels."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from backprop_conformance.bench.plan import CORETYPE_VARIABLE, OWN_KERNELS, framework_available


def _gflops(flops: int, times: Sequence[float]) -> dict[str, float]:
    return {"best_gflops": flops / min(times) / 1e9, "median_gflops": flops / statistics.median(times) / 1e9}


def matmul_peak(size: int, repeats: int, with_torch: bool = True) -> dict:
    """Return the GFLOP/s of an n x n matmul in NumPy (and torch, if installed), float64 and float32."""
    rng = np.random.default_rng(0)
    flops = 2 * size**3
    peaks: dict[str, Any] = {"matrix_size": size, "repeats": repeats}
    for dtype in ("float64", "float32"):
        a, b = rng.standard_normal((size, size)).astype(dtype), rng.standard_normal((size, size)).astype(dtype)
        a @ b  # warm up the BLAS threads
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
        peaks[f"numpy_{dtype}"] = _gflops(flops, times)
    if with_torch and framework_available("torch") is None:
        import torch

        for dtype in ("float64", "float32"):
            a = torch.randn(size, size, dtype=getattr(torch, dtype))
            a @ a
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ a
                times.append(time.perf_counter() - start)
            peaks[f"torch_{dtype}"] = _gflops(flops, times)
    return peaks


def blas_pinned() -> bool:
    """Return whether this environment names NumPy's OpenBLAS kernels (``OPENBLAS_CORETYPE``).

    Then OpenBLAS skips its own CPU detection: a machine may pin AVX2 kernels
    on an AVX-512 CPU (this project's machines set Haswell), which slows
    NumPy's float64 GEMM while the frameworks' own kernels keep AVX-512.
    The reference's train step is then timed both ways.
    """
    return CORETYPE_VARIABLE in os.environ


def own_kernels_environment() -> dict[str, str]:
    """Return this process's environment without ``OPENBLAS_CORETYPE``: OpenBLAS then detects the CPU."""
    return {name: value for name, value in os.environ.items() if name != CORETYPE_VARIABLE}


def machine_peaks(size: int, repeats: int, with_torch: bool = True) -> dict:
    """Return ``matmul_peak`` here and, where the kernels are pinned, NumPy's in a process on its own kernels.

    If that process fails, the peak on its own kernels is left out (and said
    on stderr): the rows that need it are then set against the pinned peak.
    """
    peaks = matmul_peak(size, repeats, with_torch)
    if blas_pinned():
        code = (
            "import json; from backprop_conformance.bench.peaks import matmul_peak; "
            f"print(json.dumps(matmul_peak({size}, {repeats}, with_torch=False)))"
        )
        answer = subprocess.run(
            [sys.executable, "-c", code], env=own_kernels_environment(), capture_output=True, text=True
        )
        if answer.returncode != 0:
            print(f"bench: no matmul peak without {CORETYPE_VARIABLE}: {answer.stderr.strip()}", file=sys.stderr)
            return peaks
        own = json.loads(answer.stdout.splitlines()[-1])
        peaks |= {key + OWN_KERNELS: value for key, value in own.items() if key.startswith("numpy_")}
    return peaks


def merge_peaks(before: dict, after: dict) -> dict:
    """Return the peak measured before and after the step timings: the best of both, and both medians."""
    merged: dict[str, Any] = {"matrix_size": before["matrix_size"], "repeats": 2 * before["repeats"]}
    for key in before:
        if isinstance(before[key], dict) and key in after:  # a peak that failed once is left out
            merged[key] = {
                "best_gflops": max(before[key]["best_gflops"], after[key]["best_gflops"]),
                "median_gflops_before": before[key]["median_gflops"],
                "median_gflops_after": after[key]["median_gflops"],
            }
    return merged
