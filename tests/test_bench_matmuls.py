"""The bench's matmuls alone (``bench.matmuls``): the reference's very products, and each step's rest.

The section is only worth its numbers if the products timed are those a
step runs, in the shapes and memory layouts the reference hands NumPy: a
recording of the reference's own ``np.matmul`` calls pins them.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from backprop_conformance.bench import matmuls, plan
from backprop_conformance.reference import backprop
from backprop_conformance.reference.network import Network, init_params

NETWORKS = [
    Network((784, 256, 256, 10), ("relu", "relu", "identity"), "cross_entropy"),
    Network((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse", bias=False),
    Network((2, 1), ("identity",), "mse"),
]


def _layout(array: np.ndarray) -> str:
    return "C" if array.flags.c_contiguous else "F" if array.flags.f_contiguous else "strided"


@pytest.mark.parametrize("network", NETWORKS, ids=lambda network: network.describe())
def test_the_products_timed_are_the_reference_steps_own_in_order_shape_and_layout(network, monkeypatch):
    batch = 7
    calls = []

    def matmul(left, right, out=None):
        calls.append((left.shape, _layout(left), right.shape, _layout(right)))
        return np.matmul(left, right, out=out)

    monkeypatch.setattr(backprop, "np", types.SimpleNamespace(**{**vars(np), "matmul": matmul}))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, network.sizes[0]))
    y = rng.integers(0, network.sizes[-1], batch) if network.loss_name == "cross_entropy" else (
        rng.standard_normal((batch, network.sizes[-1])))
    backprop._backprop(network, init_params(network, seed=0), x, y)

    timed = [(left.shape, _layout(left), right.shape, _layout(right))
             for left, right, _ in matmuls.numpy_operands(network, batch)]
    assert timed == calls


@pytest.mark.parametrize("network", NETWORKS, ids=lambda network: network.describe())
def test_the_products_flops_are_the_steps_flops(network):
    flops = sum(2 * left[0] * left[1] * (right[0] if what == "a W^T" else right[1])
                for what, left, right in matmuls.products(network, 5))
    assert flops == plan.step_flops(network, 5)


def _document(torch_measured: bool = True) -> dict:
    def result(family: str, median_ms: float) -> dict:
        return {"family": family, "median": median_ms / 1e3}

    implementations = {
        plan.REFERENCE_TRAIN: result("reference", 2.2), plan.REFERENCE_ADAM_PUBLIC: result("reference", 3.8),
        "torch eager float64": result("torch", 2.0), "jax.jit float64": result("jax", 2.1),
        plan.REFERENCE_TRAIN + plan.ONE_CORE: result("reference", 3.0),
    }
    libraries = {"numpy": {"median": 1.4e-3, "q1": 1.3e-3, "q3": 1.5e-3, "samples": [1.4e-3]}}
    if torch_measured:
        libraries["torch"] = {"median": 1.0e-3, "q1": 0.9e-3, "q3": 1.1e-3, "samples": [1.0e-3]}
    return {"sizes": [{"name": "784", "implementations": implementations}],
            "matmuls": {"sizes": [{"name": "784", "products": 5, "libraries": libraries}],
                        "unavailable": {} if torch_measured else {"torch": "torch is not installed"}}}


def test_each_steps_rest_is_its_median_less_its_own_librarys_matmuls():
    lines = matmuls.matmul_lines(_document())
    assert "| 784 | 1.4 [1.3, 1.5] | 1 [0.9, 1.1] |" in lines
    assert "| 784 | reference train step | 2.2 | numpy: 1.4 | 0.8 (36%) |" in lines
    assert "| 784 | reference optimizer_step adam | 3.8 | numpy: 1.4 | 2.4 (63%) |" in lines
    assert "| 784 | torch eager float64 | 2 | torch: 1 | 1 (50%) |" in lines
    text = "\n".join(lines)
    assert "jax.jit float64 |" not in text, "XLA's dots are not timed alone: no rest to give"
    assert "1 core" not in text, "the matmuls are timed with the default threads: not set against one-core steps"


def test_without_torch_its_rows_are_left_out_and_the_reason_given():
    lines = matmuls.matmul_lines(_document(torch_measured=False))
    assert not any("| torch eager" in line for line in lines)
    assert "| 784 | 1.4 [1.3, 1.5] | - |" in lines
    assert lines[-1] == "Not measured: torch: torch is not installed"


def test_a_document_without_matmuls_renders_no_section():
    assert matmuls.matmul_lines({"sizes": []}) == []
