"""What ``common.machine`` reads off the machine."""

from __future__ import annotations

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
