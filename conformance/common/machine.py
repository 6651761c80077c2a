"""What the machine is: package versions, CPU, BLAS."""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np


def package_version(name: str) -> str | None:
    """Return the installed version of distribution ``name``, or None if it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_name() -> str:
    """Return the CPU model name (from /proc/cpuinfo on Linux), or platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU's vector extensions that decide which kernels BLAS libraries and compilers pick (x86 and Arm names).
SIMD_FEATURES = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "amx_tile", "asimd", "sve", "sve2")


def simd_features(cpuinfo: str = "/proc/cpuinfo") -> list[str] | None:
    """Return which of ``SIMD_FEATURES`` the CPU has (Linux's cpuinfo flags), in that order, or None if unknown.

    NumPy's OpenBLAS, torch and XLA each pick their kernels by these (AVX2 or
    AVX-512, say), and the kernels decide the rounding: two machines that
    differ here give the same verdicts but other last bits.
    """
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    present = set(value.split())
                    return [name for name in SIMD_FEATURES if name in present]
    except OSError:
        pass
    return None


def blas() -> dict[str, Any] | None:
    """Return NumPy's BLAS build information (``numpy.show_config(mode="dicts")``), if available."""
    try:
        return dict(np.show_config(mode="dicts")["Build Dependencies"]["blas"])
    except Exception:  # NumPy < 1.26 has no mode="dicts"
        return None


def openblas() -> dict[str, Any] | None:
    """Return the OpenBLAS this process's NumPy loaded (threadpoolctl's view), or None.

    Keys: ``version``, ``architecture`` (the kernels OpenBLAS runs, e.g.
    "Haswell" for AVX2 or "SkylakeX" for AVX-512: its own detection at load
    time unless ``OPENBLAS_CORETYPE`` names them), ``num_threads``.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    # SciPy or torch may load an OpenBLAS of their own: NumPy's lies in numpy/ or its wheel's numpy.libs/.
    site = Path(np.__file__).parent.parent
    libraries = [library for library in threadpool_info() if library.get("internal_api") == "openblas"]
    if not libraries:
        return None
    library = min(libraries, key=lambda library: not _within(library.get("filepath"), site, "numpy"))
    return {key: library.get(key) for key in ("version", "architecture", "num_threads")}


def _within(path: str | None, site: Path, package: str) -> bool:
    """Return whether ``path`` lies in ``site``/``package`` or ``site``/``package``.libs."""
    return path is not None and Path(path).parent in (site / package, site / f"{package}.libs")
