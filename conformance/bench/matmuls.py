"""A step's matmuls alone, in NumPy and in torch: how much of each step is its library's BLAS.

Every step the bench times runs the same 2L - 1 products (``plan.step_flops``):
per layer ``a W^T`` forward and ``delta^T a`` backward, and ``delta W`` for
every layer but the first. The reference runs them in NumPy's BLAS
(OpenBLAS in NumPy's wheels) and torch in its own (MKL in torch's x86
wheels); XLA compiles its own. Timed alone, at the step's shapes and
layouts, each product written into an array made once, they separate what
the BLAS costs from what the rest of a step costs: a step's median less its
library's matmuls (``matmul_lines``), which is what an implementation's
own code can change.

They are timed in the bench's own process after the step timings, one
library at a time, with the default threads; each sample follows the
workers' settle pause and warm-up. The products run on distinct arrays of
normal numbers (NumPy would take ``a.T @ a`` for a symmetric product).
jax.jit is not measured here: XLA may fuse or reorder its dots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from backprop_conformance.bench.measure import quartiles
from backprop_conformance.bench.plan import IMPLEMENTATIONS, BenchSize, framework_available
from backprop_conformance.bench.tables import format_ms, markdown_table
from backprop_conformance.reference.network import Network

#: The libraries timed, by the family of the implementations whose steps call them.
LIBRARIES = {"reference": "numpy", "torch": "torch"}


def products(network: Network, batch: int) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    """Return one step's matmuls in order: (what, left operand's shape, right operand's shape).

    ``"a W^T"``: a (m, n_in) times W (n_out, n_in) transposed; ``"delta^T a"``:
    delta (m, n_out) transposed times a (m, n_in); ``"delta W"``: delta
    (m, n_out) times W (n_out, n_in), for every layer but the first.
    """
    layers = list(zip(network.sizes[:-1], network.sizes[1:]))
    forward = [("a W^T", (batch, n_in), (n_out, n_in)) for n_in, n_out in layers]
    backward = []
    for index in reversed(range(len(layers))):
        n_in, n_out = layers[index]
        backward.append(("delta^T a", (batch, n_out), (batch, n_in)))
        if index > 0:
            backward.append(("delta W", (batch, n_out), (n_out, n_in)))
    return forward + backward


def numpy_operands(network: Network, batch: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return (left, right, out) for each of ``products``, as ``np.matmul`` takes them: the transposes are views."""
    rng = np.random.default_rng(0)
    calls = []
    for what, left_shape, right_shape in products(network, batch):
        left, right = rng.standard_normal(left_shape), rng.standard_normal(right_shape)
        left_op = left.T if what == "delta^T a" else left
        right_op = right.T if what == "a W^T" else right
        calls.append((left_op, right_op, np.empty((left_op.shape[0], right_op.shape[1]))))
    return calls


def _numpy_step(network: Network, batch: int) -> Callable[[], None]:
    calls = numpy_operands(network, batch)

    def step() -> None:
        for left_op, right_op, out in calls:
            np.matmul(left_op, right_op, out=out)

    return step


def _torch_step(network: Network, batch: int) -> Callable[[], None]:
    import torch

    generator = torch.Generator().manual_seed(0)
    calls = []
    for what, left_shape, right_shape in products(network, batch):
        left = torch.randn(left_shape, dtype=torch.float64, generator=generator)
        right = torch.randn(right_shape, dtype=torch.float64, generator=generator)
        left_op = left.t() if what == "delta^T a" else left
        right_op = right.t() if what == "a W^T" else right
        calls.append((left_op, right_op, torch.empty(left_op.shape[0], right_op.shape[1], dtype=torch.float64)))

    def step() -> None:
        for left_op, right_op, out in calls:
            torch.mm(left_op, right_op, out=out)

    return step


def _sample(step: Callable[[], None], sample_seconds: float, settle_seconds: float, warm_seconds: float) -> float:
    """Return the seconds per step of one timed sample, after the pause and the warm-up."""
    time.sleep(settle_seconds)
    count, start = 0, time.perf_counter()
    while count == 0 or time.perf_counter() - start < warm_seconds:
        step()
        count += 1
    repeats = max(1, round(sample_seconds / ((time.perf_counter() - start) / count)))
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def step_matmuls(sizes: Sequence[BenchSize], repeats: int, sample_seconds: float, settle_seconds: float,
                 warm_seconds: float) -> dict[str, Any]:
    """Return, per size, each library's seconds for one step's matmuls: median, quartiles, samples.

    The libraries alternate within each of ``repeats`` rounds. A library that
    is not installed is left out, with the reason.
    """
    builders = {"numpy": _numpy_step, "torch": _torch_step}
    unavailable = {} if framework_available("torch") is None else {"torch": framework_available("torch")}
    measured = []
    for size in sizes:
        steps = {library: build(size.network, size.batch) for library, build in builders.items()
                 if library not in unavailable}
        samples: dict[str, list[float]] = {library: [] for library in steps}
        for _ in range(repeats):
            for library, step in steps.items():
                samples[library].append(_sample(step, sample_seconds, settle_seconds, warm_seconds))
        libraries = {}
        for library, times in samples.items():
            q1, median, q3 = quartiles(times)
            libraries[library] = {"median": median, "q1": q1, "q3": q3, "samples": times}
        measured.append({"name": size.name, "products": len(products(size.network, size.batch)),
                         "libraries": libraries})
    return {"sizes": measured, "unavailable": unavailable}


def matmul_lines(document: dict) -> list[str]:
    """Return performance.md's section on the step's matmuls: each library's, and each step's rest."""
    matmuls = document.get("matmuls")
    if not matmuls:
        return []
    names = [implementation.name for implementation in IMPLEMENTATIONS if not implementation.one_core
             and implementation.dtype == "float64" and implementation.family in LIBRARIES]
    steps = {size["name"]: size["implementations"] for size in document["sizes"]}
    rows = []
    for size in matmuls["sizes"]:
        libraries, found = size["libraries"], steps.get(size["name"], {})
        for name in names:
            library = LIBRARIES[found[name]["family"]] if name in found else None
            if library not in libraries:
                continue
            step, blas = found[name]["median"], libraries[library]["median"]
            rows.append([size["name"], name, format_ms(step), f"{library}: {format_ms(blas)}",
                         f"{format_ms(step - blas)} ({100 * (step - blas) / step:.0f}%)"])

    def spread(found: dict | None) -> str:
        if found is None:
            return "-"
        return f"{format_ms(found['median'])} [{format_ms(found['q1'])}, {format_ms(found['q3'])}]"

    heads = ["size", *(f"{library}'s matmuls (ms): median [q1, q3]" for library in ("numpy", "torch"))]
    per_size = [[size["name"], *(spread(size["libraries"].get(library)) for library in ("numpy", "torch"))]
                for size in matmuls["sizes"]]
    lines = [
        "", "## A step's matmuls alone", "",
        "The 2L - 1 products of one step (a W^T per layer, delta^T a per layer, delta W for every layer but the "
        "first) at the step's shapes and layouts, each written into an array made once, float64, default "
        "threads: NumPy's BLAS, which the reference runs, against torch's (`bench.matmuls`; measured in the "
        "bench's process after the step timings, one library at a time, each sample after the same pause and "
        "warm-up as the steps'). The rest of a step is its median less its library's matmuls: the work the "
        "implementation's own code does (activations, loss, reductions, the update, validation, dispatch). "
        "Approximate: inside a step the products find the caches in another state.", "",
        *markdown_table(heads, per_size), "",
        *markdown_table(["size", "step", "step (ms)", "its library's matmuls (ms)", "the rest (ms, % of the step)"],
                        rows),
    ]
    if matmuls.get("unavailable"):
        lines += ["", "Not measured: " + "; ".join(f"{k}: {v}" for k, v in matmuls["unavailable"].items())]
    return lines
