"""What ``common.machine`` reads off the machine."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_the_openblas_reported_is_numpys_even_beside_scipys():
    pytest.importorskip("scipy.linalg")  # loads SciPy's own OpenBLAS next to NumPy's
    import threadpoolctl

    from backprop_conformance.common.machine import openblas

    numpy_library = next(
        library for library in threadpoolctl.threadpool_info()
        if library["internal_api"] == "openblas" and "numpy" in library["filepath"].split("/")[-2]
    )
    assert openblas()["architecture"] == numpy_library["architecture"]
    assert openblas()["version"] == numpy_library["version"]


def test_simd_features_reads_x86_flags_and_arm_features(tmp_path):
    from backprop_conformance.common.machine import simd_features

    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse4_2 avx2 fma bmi2 avx512f avx512_vnni\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm sve sve2\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse2\n")
    assert simd_features(str(x86)) == ["sse4_2", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert simd_features(str(arm)) == ["asimd", "sve", "sve2"]
    assert simd_features(str(old)) == []
    assert simd_features(str(tmp_path / "absent")) is None


_PRODUCT_BITS = (
    "import hashlib, numpy as np; rng = np.random.default_rng(0); "
    "a, b = rng.standard_normal((64, 300)), rng.standard_normal((300, 64)); "
    "print(hashlib.sha256((a @ b).tobytes()).hexdigest(), float(np.abs(a @ b).max()))"
)


def test_openblas_kernels_decide_the_last_bits_of_a_float64_product():
    """Why the report records the kernels: the same product under two of OpenBLAS's kernels differs in its bits."""
    from backprop_conformance.common.machine import openblas, simd_features

    library, features = openblas(), simd_features() or []
    if library is None or library["architecture"] is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS that threadpoolctl can read")
    if "avx2" not in features or "fma" not in features:
        pytest.skip("OpenBLAS's Haswell kernels need AVX2 and FMA, which this CPU lacks")

    def run(coretype: str) -> tuple[str, float]:
        environment = {**os.environ, "OPENBLAS_CORETYPE": coretype}
        digest, largest = subprocess.run([sys.executable, "-c", _PRODUCT_BITS], env=environment, check=True,
                                         capture_output=True, text=True).stdout.split()
        return digest, float(largest)

    (haswell, largest), (sandybridge, other) = run("Haswell"), run("Sandybridge")
    assert haswell != sandybridge  # FMA kernels round once per multiply-add, the AVX ones twice
    assert abs(largest - other) <= 1e-12 * largest  # the same product otherwise
