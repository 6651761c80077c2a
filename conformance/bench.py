"""``backprop bench``: one training step of the reference next to torch eager and jax.jit.

Writes ``performance.md`` and ``performance.json`` to ``--out`` (default
``reports/``). What is timed is one step of gradient descent (forward, loss,
backward, update) with the model built and the batch in memory:

``reference sgd_step``  ``reference.sgd_step``, the public API, which validates
                        (and copies) its arguments on every call; float64.
``reference core``      ``_loss_and_gradients`` then ``_sgd_update_in_place`` on
                        arrays validated once, as every iteration of
                        ``reference.train`` runs: the arithmetic alone; float64.
``torch eager``         an ``nn.Sequential`` of ``nn.Linear`` and activation
                        modules, torch's loss module, ``loss.backward()`` and
                        ``torch.optim.SGD.step()`` on tensors made once.
``jax.jit``             one jitted function: ``jax.value_and_grad`` of the optax
                        loss and the ``optax.sgd`` update, params and optimizer
                        state donated; compiled before timing; every timed
                        batch of steps ends with ``jax.block_until_ready``.

Every implementation chains its steps (each starts from the params the last
one produced) at a small learning rate. The frameworks run in float64, the
like-for-like comparison, and in float32 for context.

How the numbers are taken, on a machine that may be shared and noisy: each
implementation runs a batch of steps long enough to time (calibrated after a
warm-up), the implementations take turns round-robin (the starting one
rotates every round), and the report gives medians with their quartiles.
Ratios are reference / fastest float64 framework: of the medians, and the
median of the per-round ratios (each round's samples are taken seconds
apart, so slow phases of the machine hit both sides of a paired ratio).
Python's garbage collector is off inside a timed batch, for every
implementation alike.

``--suite`` also measures the conformance suite's throughput: Hypothesis
draws cases from ``conformance.strategies.cases()`` and each goes through
``conformance.comparisons.compare_loss_and_gradients`` for torch and JAX
(jitted), i.e. three-way gradient conformance with the reference.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from reference.backprop import _loss_and_gradients
from reference.network import Network, Params, init_params
from reference.oracles import worst_relative_error
from reference.seeds import example
from reference.training import _sgd_update_in_place, sgd_step
from reference.validation import check_data, check_params

DEFAULT_OUT = "reports"
MARKDOWN_FILE = "performance.md"
JSON_FILE = "performance.json"
DEFAULT_REPEATS = 9
QUICK_REPEATS = 3
#: A timed sample runs this many seconds of steps at least (one step at least).
SAMPLE_SECONDS = 0.06
QUICK_SAMPLE_SECONDS = 0.005
LEARNING_RATE = 0.01
#: A pause before every timed sample, so that the thread pools of the implementation timed before
#: (OpenBLAS, torch's OpenMP, XLA's) stop spinning and do not compete with the one being timed.
SETTLE_SECONDS = 0.25
#: The matmul that measures the machine's peak, n x n times n x n.
PEAK_MATMUL_SIZE = 2048
QUICK_PEAK_MATMUL_SIZE = 256
PEAK_REPEATS = 3
#: The reference may take this many times the fastest float64 framework's step at the large sizes.
LARGE_SIZE_TARGET = 1.15
DEFAULT_SUITE_EXAMPLES = 200
QUICK_SUITE_EXAMPLES = 5
SUITE_ADAPTERS = ("torch-float64", "jax-float64")
#: Steps a memory probe runs after its warm-up.
MEMORY_PROBE_STEPS = 3
PACKAGES = ("numpy", "torch", "jax", "jaxlib", "optax", "hypothesis")


@dataclass(frozen=True)
class BenchSize:
    """A network and batch size to time; ``kind`` is "seed" or "large"."""

    name: str
    network: Network
    batch: int
    kind: str


def _relu_classifier(sizes: tuple[int, ...]) -> Network:
    return Network(sizes, ("relu",) * (len(sizes) - 2) + ("identity",), "cross_entropy")


SIZES: tuple[BenchSize, ...] = (
    BenchSize("2-3-1, batch 1", example("000").network, 1, "seed"),
    BenchSize("2-3-1, batch 32", example("000").network, 32, "seed"),
    BenchSize("4-2-2-1, batch 16", example("001").network, 16, "seed"),
    BenchSize("784-256-256-10, batch 128", _relu_classifier((784, 256, 256, 10)), 128, "large"),
    BenchSize("1024-1024-1024-1024-10, batch 256", _relu_classifier((1024, 1024, 1024, 1024, 10)), 256, "large"),
)
QUICK_SIZES = ("2-3-1, batch 1", "4-2-2-1, batch 16")


@dataclass(frozen=True)
class Implementation:
    """One way of taking a step: ``build(network, params, x, y, learning_rate)`` returns a Stepper."""

    name: str
    family: str  # "reference", "torch" or "jax"
    dtype: str
    build: Callable[..., Any]


def step_flops(network: Network, batch: int) -> int:
    """Return the multiply-adds x 2 of one step's matmuls (elementwise work is not counted).

    Forward ``a W^T``, backward ``delta^T a`` for every layer, and
    ``delta W`` for every layer but the first: 2 m n_in n_out flops each.
    """
    products = [n_in * n_out for n_in, n_out in zip(network.sizes[:-1], network.sizes[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def bench_data(size: BenchSize, seed: int = 0) -> tuple[Params, np.ndarray, np.ndarray]:
    """Return the params (``init_params``), inputs and targets of a size, all seeded."""
    network = size.network
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((size.batch, network.sizes[0]))
    if network.loss == "cross_entropy":
        y = rng.integers(0, network.sizes[-1], size.batch)
    else:  # targets in [0, 1] suit both mse and bce
        y = rng.uniform(0.0, 1.0, (size.batch, network.sizes[-1]))
    return init_params(network, seed=seed), x, y


# -- steppers: each holds its state and runs ``steps(k)`` -------------------------------------


class ReferencePublicStepper:
    """``reference.sgd_step`` called as a user would: validation on every call."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        self.network, self.state, self.x, self.y, self.learning_rate = network, params, x, y, learning_rate

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.state = sgd_step(self.network, self.state, self.x, self.y, self.learning_rate)

    def params(self) -> Params:
        return self.state


class ReferenceCoreStepper(ReferencePublicStepper):
    """``_loss_and_gradients`` and ``_sgd_update_in_place`` on arrays validated once, as ``train`` runs them."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        x, y = check_data(network, x, y)
        super().__init__(network, check_params(network, params), x, y, learning_rate)

    def steps(self, count: int) -> None:
        for _ in range(count):
            _, grads = _loss_and_gradients(self.network, self.state, self.x, self.y)
            self.state = _sgd_update_in_place(self.state, grads, self.learning_rate)


class TorchStepper:
    """torch eager: ``nn.Sequential``, torch's loss module, ``backward()``, ``optim.SGD``."""

    def __init__(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float, dtype: str
    ) -> None:
        import torch

        from adapters.torch_adapter import ACTIVATION_MODULES, LOSS_MODULES

        self.torch = torch
        torch_dtype = getattr(torch, dtype)
        modules = []
        with torch.no_grad():
            for (weight, bias), activation in zip(params, network.activations):
                layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=torch_dtype)
                layer.weight.copy_(torch.from_numpy(weight))
                if bias is not None:
                    layer.bias.copy_(torch.from_numpy(bias))
                modules += [layer, getattr(torch.nn, ACTIVATION_MODULES[activation])()]
        self.model = torch.nn.Sequential(*modules)
        self.loss = getattr(torch.nn, LOSS_MODULES[network.loss])(reduction=network.reduction)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=learning_rate)
        self.x = torch.as_tensor(x, dtype=torch_dtype)
        self.y = torch.as_tensor(y, dtype=torch.int64 if network.loss == "cross_entropy" else torch_dtype)

    def steps(self, count: int) -> None:
        model, loss, optimizer, x, y = self.model, self.loss, self.optimizer, self.x, self.y
        for _ in range(count):
            optimizer.zero_grad()
            loss(model(x), y).backward()
            optimizer.step()

    def params(self) -> Params:
        layers = list(self.model)[::2]
        return [
            (
                layer.weight.detach().numpy().astype(np.float64),
                None if layer.bias is None else layer.bias.detach().numpy().astype(np.float64),
            )
            for layer in layers
        ]


class JaxStepper:
    """jax.jit: one compiled function for value_and_grad and the optax.sgd update."""

    def __init__(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float, dtype: str
    ) -> None:
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.dtype = jax, dtype
        activations = {"identity": lambda z: z, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}

        def objective(layers: list, x: Any, y: Any) -> Any:
            a = x
            for layer, name in zip(layers, network.activations):
                z = a @ layer["kernel"] + layer["bias"] if "bias" in layer else a @ layer["kernel"]
                a = activations[name](z)
            if network.loss == "mse":
                elementwise = optax.squared_error(a, y)
            elif network.loss == "bce":  # on the logits, as the JAX adapter
                elementwise = optax.sigmoid_binary_cross_entropy(z, y)
            else:
                elementwise = optax.softmax_cross_entropy_with_integer_labels(z, y)
            return jnp.mean(elementwise) if network.reduction == "mean" else jnp.sum(elementwise)

        optimizer = optax.sgd(learning_rate)

        def step(layers: list, state: Any, x: Any, y: Any) -> Any:
            value, grads = jax.value_and_grad(objective)(layers, x, y)
            updates, state = optimizer.update(grads, state, layers)
            return optax.apply_updates(layers, updates), state, value

        self.step = jax.jit(step, donate_argnums=(0, 1))
        with self._scope():
            # JAX/Flax layout: kernel = W^T, (n_in, n_out).
            self.layers = [
                {"kernel": jnp.asarray(weight.T, dtype=dtype)}
                | ({} if bias is None else {"bias": jnp.asarray(bias, dtype=dtype)})
                for weight, bias in params
            ]
            self.state = optimizer.init(self.layers)
            self.x = jnp.asarray(x, dtype=dtype)
            self.y = jnp.asarray(y, dtype=jnp.int32 if network.loss == "cross_entropy" else dtype)

    def _scope(self) -> Any:
        return self.jax.enable_x64(self.dtype == "float64")

    def steps(self, count: int) -> None:
        with self._scope():
            layers, state = self.layers, self.state
            for _ in range(count):
                layers, state, _ = self.step(layers, state, self.x, self.y)
            self.layers, self.state = self.jax.block_until_ready((layers, state))

    def params(self) -> Params:
        return [
            (np.asarray(layer["kernel"], dtype=np.float64).T.copy(),
             np.asarray(layer["bias"], dtype=np.float64) if "bias" in layer else None)
            for layer in self.layers
        ]

    def compiled_memory(self) -> dict[str, int] | None:
        """Return XLA's buffer sizes for one compiled step (``memory_analysis``), if it reports them."""
        with self._scope():
            try:
                stats = self.step.lower(self.layers, self.state, self.x, self.y).compile().memory_analysis()
            except Exception:  # not every backend or version reports it
                return None
        if stats is None:
            return None
        names = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes")
        return {name: int(getattr(stats, name)) for name in names}


IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation("reference sgd_step", "reference", "float64", ReferencePublicStepper),
    Implementation("reference core", "reference", "float64", ReferenceCoreStepper),
    Implementation("torch eager float64", "torch", "float64", lambda *a: TorchStepper(*a, dtype="float64")),
    Implementation("jax.jit float64", "jax", "float64", lambda *a: JaxStepper(*a, dtype="float64")),
    Implementation("torch eager float32", "torch", "float32", lambda *a: TorchStepper(*a, dtype="float32")),
    Implementation("jax.jit float32", "jax", "float32", lambda *a: JaxStepper(*a, dtype="float32")),
)
REFERENCE_PUBLIC, REFERENCE_CORE = "reference sgd_step", "reference core"


def _implementation(name: str) -> Implementation:
    return next(implementation for implementation in IMPLEMENTATIONS if implementation.name == name)


def _framework_available(family: str) -> str | None:
    """Return None if ``family`` can be imported, else the reason it cannot."""
    modules = {"reference": (), "torch": ("torch",), "jax": ("jax", "optax")}[family]
    for module in modules:
        try:
            __import__(module)
        except ImportError as error:
            return f"{module} is not installed ({error})"
    return None


# -- timing -----------------------------------------------------------------------------------


def _timed(stepper: Any, count: int) -> float:
    """Return the seconds per step of ``count`` steps, the garbage collector off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        stepper.steps(count)
        return (time.perf_counter() - start) / count
    finally:
        if enabled:
            gc.enable()


def _quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
    """Return the first quartile, the median and the third quartile."""
    if len(samples) == 1:
        return samples[0], samples[0], samples[0]
    first, _, third = statistics.quantiles(samples, n=4, method="inclusive")
    return first, statistics.median(samples), third


def time_size(size: BenchSize, implementations: Sequence[Implementation], repeats: int, sample_seconds: float) -> dict:
    """Return the timings of every implementation on one size, interleaved round-robin."""
    params, x, y = bench_data(size)
    expected = sgd_step(size.network, params, x, y, LEARNING_RATE)
    steppers, results = {}, {}
    for implementation in implementations:
        started = time.perf_counter()
        stepper = implementation.build(size.network, params, x, y, LEARNING_RATE)
        stepper.steps(1)  # the first step: jax compiles here
        first_step = time.perf_counter() - started
        # Does this implementation compute the same step? (A benchmark of a wrong step is worthless.)
        agreement = worst_relative_error(stepper.params(), expected)
        warm = min(_timed(stepper, 1) for _ in range(3))
        count = max(1, math.ceil(sample_seconds / max(warm, 1e-9)))
        steppers[implementation.name] = (stepper, count)
        results[implementation.name] = {
            "family": implementation.family,
            "dtype": implementation.dtype,
            "first_step_seconds": first_step,
            "steps_per_sample": count,
            "agreement_after_one_step": agreement,
            "samples": [],
        }
    names = list(steppers)
    for round_index in range(repeats):
        offset = round_index % len(names)
        for name in names[offset:] + names[:offset]:
            stepper, count = steppers[name]
            time.sleep(SETTLE_SECONDS)
            results[name]["samples"].append(_timed(stepper, count))
    flops = step_flops(size.network, size.batch)
    for result in results.values():
        first, median, third = _quartiles(result["samples"])
        result.update(median=median, q1=first, q3=third, gflops=flops / median / 1e9)
    return {
        "name": size.name,
        "kind": size.kind,
        "network": size.network.describe(),
        "batch": size.batch,
        "flops_per_step": flops,
        "implementations": results,
        "ratios": _ratios(results),
        "jax_compiled_memory": {
            name: steppers[name][0].compiled_memory()
            for name in names
            if results[name]["family"] == "jax"
        },
    }


def _ratios(results: dict) -> dict:
    """Return reference / fastest float64 framework: of medians and per round, for both reference APIs."""
    frameworks = [name for name, r in results.items() if r["family"] != "reference" and r["dtype"] == "float64"]
    if not frameworks:
        return {}
    fastest = min(frameworks, key=lambda name: results[name]["median"])
    ratios: dict[str, Any] = {"fastest_float64_framework": fastest}
    for reference_name in (REFERENCE_PUBLIC, REFERENCE_CORE):
        if reference_name not in results:
            continue
        reference = results[reference_name]
        per_round = [ours / theirs for ours, theirs in zip(reference["samples"], results[fastest]["samples"])]
        first, median, third = _quartiles(per_round)
        ratios[reference_name] = {
            "of_medians": reference["median"] / results[fastest]["median"],
            "per_round_median": median,
            "per_round_q1": first,
            "per_round_q3": third,
            "per_round_max": max(per_round),
            "versus": {name: reference["median"] / results[name]["median"] for name in frameworks},
        }
    return ratios


def _gflops(flops: int, times: Sequence[float]) -> dict[str, float]:
    return {"best_gflops": flops / min(times) / 1e9, "median_gflops": flops / statistics.median(times) / 1e9}


def matmul_peak(size: int, repeats: int) -> dict:
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
    if _framework_available("torch") is None:
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


def _merge_peaks(before: dict, after: dict) -> dict:
    """Return the peak measured before and after the step timings: the best of both, and both."""
    merged: dict[str, Any] = {"matrix_size": before["matrix_size"], "repeats": 2 * before["repeats"]}
    for key in before:
        if isinstance(before[key], dict):
            merged[key] = {
                "best_gflops": max(before[key]["best_gflops"], after[key]["best_gflops"]),
                "median_gflops_before": before[key]["median_gflops"],
                "median_gflops_after": after[key]["median_gflops"],
            }
    return merged


# -- memory -----------------------------------------------------------------------------------


def reference_traced_peak(size: BenchSize, implementation: Implementation) -> int:
    """Return the bytes NumPy allocates at the peak of one reference step, beyond what was live before.

    NumPy reports its array buffers to ``tracemalloc``; the step runs once
    untraced first, so that nothing one-off is counted.
    """
    params, x, y = bench_data(size)
    stepper = implementation.build(size.network, params, x, y, LEARNING_RATE)
    stepper.steps(1)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        stepper.steps(1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def _max_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def memory_probe(size_name: str, implementation_name: str) -> dict:
    """Return the growth of peak resident memory while one implementation is built and stepped.

    Run in a fresh process (``python -m conformance.bench --memory-probe``):
    peak RSS after the imports and the data, then after building the model,
    a first (compiling) step and ``MEMORY_PROBE_STEPS`` more. The growth
    includes the implementation's copies of the params, its workspaces and
    allocator caches, and one-off costs such as thread pools and compiled code.
    """
    size = next(s for s in SIZES if s.name == size_name)
    implementation = _implementation(implementation_name)
    if implementation.family != "reference":
        __import__(implementation.family)
    params, x, y = bench_data(size)
    baseline = _max_rss_bytes()
    stepper = implementation.build(size.network, params, x, y, LEARNING_RATE)
    stepper.steps(1 + MEMORY_PROBE_STEPS)
    return {"peak_rss_growth_bytes": _max_rss_bytes() - baseline, "baseline_peak_rss_bytes": baseline}


def probe_in_subprocess(size_name: str, implementation_name: str) -> dict:
    """Return ``memory_probe`` run in a fresh Python process, or the error it reported."""
    command = [sys.executable, "-m", "conformance.bench", "--memory-probe", size_name, implementation_name]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed"}
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- the conformance suite's throughput (--suite) ---------------------------------------------


def suite_throughput(examples: int, specs: Sequence[str] = SUITE_ADAPTERS) -> dict:
    """Return how many Hypothesis cases per second go through three-way gradient conformance.

    Each case from ``conformance.strategies.cases()`` (derandomized, so every
    run draws the same cases) goes through ``compare_loss_and_gradients`` for
    every adapter in ``specs``; each of those computes the reference's
    gradients, the tolerance model's bounds and the adapter's gradients. JAX
    compiles once per new network structure and batch shape: that cost is in.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    from adapters.loading import load_adapter
    from adapters.protocol import AdapterUnavailable
    from conformance.comparisons import OutsideModel, compare_loss_and_gradients
    from conformance.strategies import cases

    adapters, unavailable = [], {}
    for spec in specs:
        try:
            adapters.append(load_adapter(spec))
        except AdapterUnavailable as reason:
            unavailable[spec] = str(reason)
    seconds = {adapter.label: 0.0 for adapter in adapters}
    outcomes = {adapter.label: {"pass": 0, "fail": 0, "outside model": 0, "error": 0} for adapter in adapters}
    reference_seconds = [0.0]
    drawn = [0]

    @settings(
        max_examples=examples, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )
    @given(case=cases())
    def check_case(case: Any) -> None:
        drawn[0] += 1
        start = time.perf_counter()
        _loss_and_gradients(case.network, case.params, case.x, case.y)
        reference_seconds[0] += time.perf_counter() - start
        for adapter in adapters:
            start = time.perf_counter()
            try:
                measurements = compare_loss_and_gradients(adapter, case)
                outcome = "pass" if all(m.passed for m in measurements) else "fail"
            except OutsideModel:
                outcome = "outside model"
            except Exception:  # counted, not raised: this measures speed, the suite judges correctness
                outcome = "error"
            seconds[adapter.label] += time.perf_counter() - start
            outcomes[adapter.label][outcome] += 1

    start = time.perf_counter()
    check_case()
    total = time.perf_counter() - start
    checks = drawn[0] * len(adapters)
    return {
        "adapters": [adapter.label for adapter in adapters],
        "unavailable": unavailable,
        "cases": drawn[0],
        "seconds": total,
        "cases_per_second": drawn[0] / total if total else None,
        "adapter_checks_per_second": checks / total if total else None,
        "seconds_by_adapter": seconds,
        "reference_gradient_seconds": reference_seconds[0],
        "hypothesis_and_other_seconds": total - sum(seconds.values()) - reference_seconds[0],
        "outcomes": outcomes,
    }


# -- environment ------------------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> dict | None:
    try:
        return dict(np.show_config(mode="dicts")["Build Dependencies"]["blas"])
    except Exception:  # NumPy < 1.26 has no mode="dicts"
        return None


def _openblas_threads() -> int | None:
    """Return the thread count of the OpenBLAS NumPy loaded, read through its own API, if found."""
    import ctypes

    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and line.rstrip().endswith(".so")}
    except OSError:
        return None
    for path in sorted(paths):
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            function = getattr(library, symbol, None)
            if function is not None:
                function.restype = ctypes.c_int
                return int(function())
    return None


def environment() -> dict:
    """Return what the numbers depend on: versions, BLAS, threads, CPU, load."""
    threads: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy_openblas": _openblas_threads(),
        "environment_variables": {
            name: os.environ[name]
            for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
            if name in os.environ
        },
    }
    if _framework_available("torch") is None:
        import torch

        threads["torch_intra_op"] = torch.get_num_threads()
        threads["torch_inter_op"] = torch.get_num_interop_threads()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "versions": {name: _package_version(name) for name in PACKAGES},
        "numpy_blas": _blas(),
        "threads": threads,
    }


# -- the report -------------------------------------------------------------------------------


def command_line(arguments: argparse.Namespace) -> str:
    """Return the command that regenerates this report."""
    words = ["backprop", "bench"]
    if arguments.out != DEFAULT_OUT:
        words += ["--out", arguments.out]
    if arguments.repeats is not None:
        words += ["--repeats", str(arguments.repeats)]
    if arguments.quick:
        words.append("--quick")
    if arguments.suite:
        words.append("--suite")
    if arguments.suite and arguments.suite_examples is not None:
        words += ["--suite-examples", str(arguments.suite_examples)]
    return " ".join(words)


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3g}" if milliseconds < 100 else f"{milliseconds:.0f}"


def _bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def targets(document: dict) -> list[dict]:
    """Return the issue's targets, each with the numbers that decide it."""
    checks = []
    for size in document["sizes"]:
        results, ratios = size["implementations"], size["ratios"]
        if size["kind"] == "large" and ratios:
            for name in (REFERENCE_PUBLIC, REFERENCE_CORE):
                if name in ratios:
                    ratio = ratios[name]
                    checks.append({
                        "size": size["name"], "reference": name, "against": ratios["fastest_float64_framework"],
                        "target": f"<= {LARGE_SIZE_TARGET}x", "ratio": ratio["of_medians"],
                        "per_round": [ratio["per_round_q1"], ratio["per_round_median"], ratio["per_round_q3"]],
                        "met": ratio["of_medians"] <= LARGE_SIZE_TARGET,
                    })
        if size["kind"] == "seed" and "torch eager float64" in results and REFERENCE_PUBLIC in results:
            ours, theirs = results[REFERENCE_PUBLIC], results["torch eager float64"]
            per_round = [a / b for a, b in zip(ours["samples"], theirs["samples"])]
            first, median, third = _quartiles(per_round)
            checks.append({
                "size": size["name"], "reference": REFERENCE_PUBLIC, "against": "torch eager float64",
                "target": "< 1x", "ratio": ours["median"] / theirs["median"], "per_round": [first, median, third],
                "met": ours["median"] < theirs["median"],
            })
    return checks


def _xla_step_bytes(stats: dict[str, int]) -> int:
    """Return the bytes XLA allocates for one step: temporaries and the outputs not aliased to inputs."""
    return stats["temp_size_in_bytes"] + stats["output_size_in_bytes"] - stats["alias_size_in_bytes"]


def render_markdown(document: dict) -> str:
    """Return performance.md: targets, ratios, step times, GFLOP/s, memory, suite throughput, method."""
    environment_, peak = document["environment"], document["matmul_peak"]
    versions = environment_["versions"]
    threads = environment_["threads"]
    lines = [
        f"_Generated by `{document['command']}` (conformance/bench.py); do not edit: regenerate with that command._",
        "",
        "# Performance: one training step of the reference, torch eager and jax.jit",
        "",
        f"{document['generated']}{' (a --quick smoke run: few repeats, small sizes only)' if document['quick'] else ''}"
        f" on {environment_['cpu']}, {threads['cpu_count']} cores; numpy {versions['numpy']} "
        f"(OpenBLAS threads: {threads['numpy_openblas']}), torch {versions['torch']} "
        f"(threads: {threads.get('torch_intra_op')}), jax {versions['jax']}. "
        f"Load average {document['load_average_before']} before, {document['load_average_after']} after: "
        "the machine is shared, so read the quartiles, not only the medians.",
        "",
        "One step = forward, loss, backward and update, model built and batch in memory. "
        "Times are medians over interleaved rounds, in milliseconds; [q1, q3] are the quartiles.",
        "",
        "## Targets",
        "",
    ]
    rows = [
        [check["size"], check["reference"], check["against"], check["target"], f"{check['ratio']:.2f}",
         "[" + ", ".join(f"{value:.2f}" for value in check["per_round"]) + "]", "yes" if check["met"] else "**no**"]
        for check in document["targets"]
    ]
    lines += _table(
        ("size", "reference", "against", "target", "ratio of medians", "per-round ratio [q1, median, q3]", "met"), rows
    )
    lines += ["", "## Ratios: reference float64 / framework float64", ""]
    rows = []
    for size in document["sizes"]:
        for name in (REFERENCE_PUBLIC, REFERENCE_CORE):
            ratio = size["ratios"].get(name)
            if ratio is None:
                continue
            versus = "; ".join(f"{framework}: {value:.2f}" for framework, value in ratio["versus"].items())
            rows.append([
                size["name"], name, f"{ratio['of_medians']:.2f}",
                f"{ratio['per_round_median']:.2f} [{ratio['per_round_q1']:.2f}, {ratio['per_round_q3']:.2f}]",
                versus,
            ])
    lines += _table(
        ("size", "reference", "/ fastest float64 framework", "per round: median [q1, q3]", "/ each float64 framework"),
        rows,
    )
    names = [implementation.name for implementation in IMPLEMENTATIONS]
    lines += ["", "## Step times (ms): median [q1, q3]", ""]
    rows = []
    for size in document["sizes"]:
        results = size["implementations"]
        rows.append([size["name"]] + [
            f"{_ms(results[name]['median'])} [{_ms(results[name]['q1'])}, {_ms(results[name]['q3'])}]"
            if name in results else "-"
            for name in names
        ])
    lines += _table(["size", *names], rows)
    lines += [
        "",
        "## Achieved GFLOP/s (matmul flops of one step / median step time) and % of the matmul peak",
        "",
        f"Peak: a {peak['matrix_size']}x{peak['matrix_size']} matmul, best of {peak['repeats']} runs taken before and "
        "after the step timings: "
        + "; ".join(
            f"{key.replace('_', ' ')} {value['best_gflops']:.0f} GFLOP/s"
            f" (medians {value['median_gflops_before']:.0f} before, {value['median_gflops_after']:.0f} after)"
            for key, value in peak.items() if isinstance(value, dict)
        )
        + ". Each implementation is set against the NumPy peak of its dtype.",
        "",
    ]
    rows = []
    for size in document["sizes"]:
        results = size["implementations"]
        cells = [size["name"], f"{size['flops_per_step'] / 1e6:.3g}"]
        for name in names:
            if name not in results:
                cells.append("-")
                continue
            best = peak[f"numpy_{results[name]['dtype']}"]["best_gflops"]
            cells.append(f"{results[name]['gflops']:.3g} ({100 * results[name]['gflops'] / best:.0f}%)")
        rows.append(cells)
    lines += _table(["size", "MFLOP/step", *names], rows)
    lines += ["", "## Peak memory", ""]
    memory = document.get("memory", {})
    rows = []
    for size in document["sizes"]:
        by_name = memory.get(size["name"], {})
        cells = [size["name"]]
        for name in names:
            entry = by_name.get(name)
            if entry is None:
                cells.append("-")
            elif "error" in entry:
                cells.append(f"error: {entry['error']}")
            else:
                parts = []
                if "traced_step_peak_bytes" in entry:
                    parts.append(f"step {_bytes(entry['traced_step_peak_bytes'])} (tracemalloc)")
                if entry.get("xla"):
                    parts.append(f"step {_bytes(_xla_step_bytes(entry['xla']))} (XLA temp + unaliased out)")
                if "peak_rss_growth_bytes" in entry:
                    parts.append(f"RSS +{_bytes(entry['peak_rss_growth_bytes'])}")
                cells.append("; ".join(parts) or "-")
        rows.append(cells)
    lines += _table(["size", *names], rows)
    lines += [
        "",
        "- **tracemalloc** (reference): the most bytes NumPy held at once during one step, beyond what was live "
        "before it (the step's temporaries, gradients and new params; sgd_step's copies of its inputs included).",
        "- **XLA** (jax.jit): `compiled.memory_analysis()` of the step, temp buffers plus outputs not aliased "
        "to the donated inputs.",
        "- **RSS +** (all): growth of the process's peak resident set in a fresh process from after the imports "
        f"and data to after building the model, a first step and {MEMORY_PROBE_STEPS} more: copies of the params, "
        "workspaces, allocator caches, thread pools and compiled code. Coarse (page granularity, one-off costs "
        "included) but measured the same way for every implementation."
        + (" Not measured in a --quick run." if document["quick"] else ""),
    ]
    suite = document.get("suite")
    lines += ["", "## Conformance suite throughput (--suite)", ""]
    if suite is None:
        lines.append("Not measured: run with `--suite`.")
    else:
        lines += [
            f"{suite['cases']} Hypothesis cases from `conformance.strategies.cases()` (derandomized), each through "
            f"`compare_loss_and_gradients` for {', '.join(suite['adapters'])}: **{suite['cases_per_second']:.1f} "
            f"cases/s**, {suite['adapter_checks_per_second']:.1f} adapter checks/s ({suite['seconds']:.1f} s in all).",
            "",
        ]
        rows = [[label, f"{seconds:.2f}", ", ".join(f"{k} {v}" for k, v in suite["outcomes"][label].items() if v)]
                for label, seconds in suite["seconds_by_adapter"].items()]
        rows.append(["reference gradients alone (once per case)", f"{suite['reference_gradient_seconds']:.2f}", ""])
        rows.append(["Hypothesis generation and the rest", f"{suite['hypothesis_and_other_seconds']:.2f}", ""])
        lines += _table(("where the time goes", "seconds", "outcomes"), rows)
        if suite["unavailable"]:
            lines += ["", "Unavailable: " + "; ".join(f"{k}: {v}" for k, v in suite["unavailable"].items())]
    lines += [
        "",
        "## How it was measured",
        "",
        "- Each implementation chains its steps at learning rate "
        f"{LEARNING_RATE}; after its first step its params are checked against `reference.sgd_step` "
        "(worst relative error in performance.json, `agreement_after_one_step`).",
        "- A sample is a batch of consecutive steps lasting at least "
        f"{document['sample_seconds'] * 1e3:.0f} ms (calibrated after a warm-up), divided by their count; "
        f"{document['repeats']} rounds, the implementations taking turns round-robin, the first one rotating; "
        "the garbage collector is off inside a batch.",
        "- reference sgd_step validates and copies its arguments every call, as a user calls it; reference core "
        "is `_loss_and_gradients` + `_sgd_update_in_place` on arrays validated once, as each iteration of "
        "`reference.train` runs them.",
        "- torch eager: `nn.Sequential` + loss module + `backward()` + `optim.SGD.step()`, tensors built once. "
        "jax.jit: value_and_grad + `optax.sgd` in one jitted function with donated params, compiled before timing "
        "(first step including compilation: `first_step_seconds` in performance.json); a timed batch ends with "
        "`block_until_ready`.",
        "- GFLOP/s counts the matmuls only (forward, dW and the backward delta products): "
        "2 m (2 sum n_in n_out + sum over layers after the first of n_in n_out).",
    ]
    return "\n".join(lines) + "\n"


def _write_atomically(out_dir: Path, files: dict[str, str]) -> None:
    """Write every file to a temporary name in ``out_dir``, then rename them into place."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = []
    try:
        for name, text in files.items():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            staged.append((temporary, out_dir / name))
        for temporary, final in staged:
            os.replace(temporary, final)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.remove(temporary)


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(arguments: argparse.Namespace) -> int:
    """Time every implementation on every size, optionally the suite, and write the report."""
    quick = arguments.quick
    repeats = arguments.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    sample_seconds = QUICK_SAMPLE_SECONDS if quick else SAMPLE_SECONDS
    sizes = [size for size in SIZES if not quick or size.name in QUICK_SIZES]
    implementations, unavailable = [], {}
    for implementation in IMPLEMENTATIONS:
        reason = _framework_available(implementation.family)
        if reason is None:
            implementations.append(implementation)
        else:
            unavailable[implementation.name] = reason
    load_before = _load_average()
    peak_size = QUICK_PEAK_MATMUL_SIZE if quick else PEAK_MATMUL_SIZE
    _log(f"bench: matmul peak ({peak_size}x{peak_size})")
    peak_before = matmul_peak(peak_size, PEAK_REPEATS)
    timed = []
    for size in sizes:
        _log(f"bench: {size.name}")
        timed.append(time_size(size, implementations, repeats, sample_seconds))
    peak = _merge_peaks(peak_before, matmul_peak(peak_size, PEAK_REPEATS))
    memory: dict[str, dict[str, Any]] = {}
    for size in sizes:
        _log(f"bench: memory, {size.name}")
        entries = memory.setdefault(size.name, {})
        for implementation in implementations:
            entry: dict[str, Any] = {}
            if implementation.family == "reference":
                entry["traced_step_peak_bytes"] = reference_traced_peak(size, implementation)
            if implementation.family == "jax":
                timings = next(timing for timing in timed if timing["name"] == size.name)
                entry["xla"] = timings["jax_compiled_memory"][implementation.name]
            if not quick:
                entry |= probe_in_subprocess(size.name, implementation.name)
            entries[implementation.name] = entry
    suite = None
    if arguments.suite:
        examples = arguments.suite_examples or (QUICK_SUITE_EXAMPLES if quick else DEFAULT_SUITE_EXAMPLES)
        _log(f"bench: suite throughput, {examples} cases")
        suite = suite_throughput(examples)
    document = {
        "command": command_line(arguments),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "repeats": repeats,
        "sample_seconds": sample_seconds,
        "learning_rate": LEARNING_RATE,
        "environment": environment(),
        "unavailable": unavailable,
        "load_average_before": load_before,
        "load_average_after": _load_average(),
        "matmul_peak": peak,
        "sizes": timed,
        "memory": memory,
        "suite": suite,
    }
    document["targets"] = targets(document)
    out_dir = Path(arguments.out)
    _write_atomically(out_dir, {
        JSON_FILE: json.dumps(document, indent=2) + "\n",
        MARKDOWN_FILE: render_markdown(document),
    })
    print(f"wrote {out_dir / MARKDOWN_FILE} and {out_dir / JSON_FILE}")
    for check in document["targets"]:
        verdict = "met" if check["met"] else "NOT met"
        print(f"  {check['size']}: {check['reference']} / {check['against']} = {check['ratio']:.2f} "
              f"(target {check['target']}): {verdict}")
    if suite is not None:
        print(f"  suite: {suite['cases_per_second']:.1f} cases/s over {suite['cases']} cases")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``commands`` (argparse subparsers) and return its parser."""
    parser = commands.add_parser(
        "bench",
        help="time one training step of the reference, torch eager and jax.jit",
        description="Time one training step (forward, loss, backward, update) of the reference, torch eager and "
        "jax.jit at the documents' sizes and two large ones, interleaved; write performance.md and "
        "performance.json to --out.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output directory (default {DEFAULT_OUT}/)")
    parser.add_argument("--repeats", type=_positive, default=None, metavar="N",
                        help=f"interleaved rounds per size (default {DEFAULT_REPEATS}, {QUICK_REPEATS} with --quick)")
    parser.add_argument("--suite", action="store_true",
                        help="also measure the conformance suite's throughput (three-way gradient checks)")
    parser.add_argument("--suite-examples", type=_positive, default=None, metavar="N",
                        help=f"Hypothesis cases for --suite (default {DEFAULT_SUITE_EXAMPLES}, "
                        f"{QUICK_SUITE_EXAMPLES} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: the two seed sizes, few rounds, short samples, no memory subprocesses")
    parser.set_defaults(run=run)
    return parser


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-probe":
        print(json.dumps(memory_probe(sys.argv[2], sys.argv[3])))
    else:
        sys.exit("usage: python -m conformance.bench --memory-probe SIZE IMPLEMENTATION (use `backprop bench`)")
