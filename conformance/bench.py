"""``backprop bench``: one training step of the reference next to torch eager and jax.jit.

Writes ``performance.md`` and ``performance.json`` to ``--out`` (default
``reports/``). What is timed is one step of gradient descent (forward, loss,
backward, update) with the model built and the batch in memory:

``reference sgd_step``  ``reference.sgd_step``, the public API, which validates
                        (and copies) its arguments on every call; float64.
``reference train step``  one iteration of ``reference.train``
                        (``reference.training._train_step``) on arrays
                        validated once, writing into the previous step's
                        workspace as ``train`` does: the arithmetic alone; float64.
``torch eager``         an ``nn.Sequential`` of ``nn.Linear`` and activation
                        modules, torch's loss module, ``loss.backward()`` and
                        ``torch.optim.SGD.step()`` on tensors made once.
``jax.jit``             one jitted function: ``jax.value_and_grad`` of the optax
                        loss and the ``optax.sgd`` update, params and optimizer
                        state donated; compiled before timing; every timed
                        batch of steps ends with ``jax.block_until_ready``.

Every implementation chains its steps (each starts from the params the last
one produced) at a small learning rate. The frameworks run in float64, the
like-for-like comparison, and in float32 for context. A second group runs
the float64 steps held to one core (CPU affinity, and one thread in
OpenBLAS and torch): on a shared machine, where other processes take
cores, a library's thread pool can lose more to waiting for descheduled
threads than it gains.

How the numbers are taken, on a machine that may be shared and noisy: each
implementation runs in its own worker process (``serve``), so that no
library's thread pool competes with another's; the workers take turns
round-robin (the first one rotating every round), each turn a batch of
steps long enough to time, after a pause that lets the previous worker's
threads go idle. The report gives medians with their quartiles. Ratios are
reference / fastest float64 framework of the same thread group: of the
medians, and the median of the per-round ratios (a round's samples are
taken seconds apart, so slow phases of the machine hit both sides).

The command itself (``run``, ``add_parser``) and the rendering of
performance.md are in ``conformance.bench_report``; this module measures,
and judges the targets (``targets``).

``--suite`` also measures the conformance suite's throughput: Hypothesis
draws cases from ``conformance.strategies.cases()`` and each goes through
``conformance.comparisons.compare_loss_and_gradients`` for torch and JAX
(jitted), i.e. three-way gradient conformance with the reference.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
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
from typing import Any

import numpy as np

from conformance.machine import blas, cpu_name, openblas, package_version
from reference.backprop import Workspace, _loss_and_gradients
from reference.network import Network, Params, init_params
from reference.oracles import worst_relative_error
from reference.seeds import example
from reference.training import _train_step, sgd_step
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
QUICK_SETTLE_SECONDS = 0.02
#: The matmul that measures the machine's peak, n x n times n x n.
PEAK_MATMUL_SIZE = 2048
QUICK_PEAK_MATMUL_SIZE = 256
PEAK_REPEATS = 3
#: The reference may take this many times the fastest float64 framework's step at the large sizes.
LARGE_SIZE_TARGET = 1.15
DEFAULT_SUITE_EXAMPLES = 300
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
QUICK_SIZES = ("2-3-1, batch 1",)
QUICK_NOTE = " (a --quick smoke run: one small size, few rounds: not a measurement to quote)"


@dataclass(frozen=True)
class Implementation:
    """One way of taking a step: ``build(network, params, x, y, learning_rate)`` returns a Stepper."""

    name: str
    family: str  # "reference", "torch" or "jax"
    dtype: str
    build: Callable[..., Any]
    #: False: the libraries' default threads; True: held to one core (see ``one_core_environment``).
    one_core: bool = False
    #: True: run without ``OPENBLAS_CORETYPE``, so that OpenBLAS picks its kernels for this CPU itself.
    own_kernels: bool = False


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


class ReferenceTrainStepper(ReferencePublicStepper):
    """One iteration of ``reference.train`` (``_train_step``) on arrays validated once, as ``train`` runs it."""

    def __init__(self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float) -> None:
        x, y = check_data(network, x, y)
        super().__init__(network, check_params(network, params), x, y, learning_rate)
        self.workspace: Workspace | None = None

    def steps(self, count: int) -> None:
        for _ in range(count):
            _, self.workspace = _train_step(
                self.network, self.state, self.x, self.y, self.learning_rate, self.workspace
            )


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


def _torch64(*arguments: Any) -> TorchStepper:
    return TorchStepper(*arguments, dtype="float64")


def _torch32(*arguments: Any) -> TorchStepper:
    return TorchStepper(*arguments, dtype="float32")


def _jax64(*arguments: Any) -> JaxStepper:
    return JaxStepper(*arguments, dtype="float64")


def _jax32(*arguments: Any) -> JaxStepper:
    return JaxStepper(*arguments, dtype="float32")


REFERENCE_PUBLIC, REFERENCE_TRAIN = "reference sgd_step", "reference train step"
ONE_CORE = ", 1 core"
#: The variable that, when this environment sets it, names NumPy's OpenBLAS kernels instead of its detection.
CORETYPE_VARIABLE = "OPENBLAS_CORETYPE"
OWN_KERNELS = f", {CORETYPE_VARIABLE} unset"
IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(REFERENCE_PUBLIC, "reference", "float64", ReferencePublicStepper),
    Implementation(REFERENCE_TRAIN, "reference", "float64", ReferenceTrainStepper),
    # Measured only where the environment sets OPENBLAS_CORETYPE (see ``blas_pinned``).
    Implementation(REFERENCE_TRAIN + OWN_KERNELS, "reference", "float64", ReferenceTrainStepper, own_kernels=True),
    Implementation("torch eager float64", "torch", "float64", _torch64),
    Implementation("jax.jit float64", "jax", "float64", _jax64),
    Implementation("torch eager float32", "torch", "float32", _torch32),
    Implementation("jax.jit float32", "jax", "float32", _jax32),
    # Context for a shared machine: the float64 steps, each held to one core.
    Implementation(REFERENCE_PUBLIC + ONE_CORE, "reference", "float64", ReferencePublicStepper, one_core=True),
    Implementation(REFERENCE_TRAIN + ONE_CORE, "reference", "float64", ReferenceTrainStepper, one_core=True),
    Implementation(
        REFERENCE_TRAIN + OWN_KERNELS + ONE_CORE, "reference", "float64", ReferenceTrainStepper,
        one_core=True, own_kernels=True,
    ),
    Implementation("torch eager float64" + ONE_CORE, "torch", "float64", _torch64, one_core=True),
    Implementation("jax.jit float64" + ONE_CORE, "jax", "float64", _jax64, one_core=True),
)
#: The groups whose ratios are taken among themselves: default threads, and held to one core.
THREAD_GROUPS = ("default", "one core")


def _implementation(name: str) -> Implementation:
    return next(implementation for implementation in IMPLEMENTATIONS if implementation.name == name)


def framework_available(family: str) -> str | None:
    """Return None if ``family``'s modules are installed, else the reason (without importing them)."""
    for module in {"reference": (), "torch": ("torch",), "jax": ("jax", "optax")}[family]:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None


# -- the worker: one implementation at one size, in its own process ---------------------------


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
    step's time. Then, for each line ``k`` read from ``commands``, ``k`` steps
    and one line with their time per step.
    """
    size = next(s for s in SIZES if s.name == size_name)
    implementation = _implementation(implementation_name)
    if implementation.family != "reference":
        importlib.import_module(implementation.family)  # before the RSS baseline: the import is not the step's
    params, x, y = bench_data(size)
    expected = sgd_step(size.network, params, x, y, LEARNING_RATE)
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
        print(json.dumps(_timed(stepper, int(line))), file=protocol, flush=True)


class WorkerError(RuntimeError):
    """A worker process failed to start or to answer."""


class Worker:
    """The parent's handle on a ``serve`` process: start it, ask it for timed batches, stop it."""

    def __init__(self, size: BenchSize, implementation: Implementation) -> None:
        self.name = implementation.name
        environment_ = _own_kernels_environment() if implementation.own_kernels else dict(os.environ)
        command = [sys.executable, "-m", "conformance.bench", "--worker", size.name, implementation.name]
        if implementation.one_core:
            environment_ |= ONE_CORE_ENVIRONMENT
            command += ["--cpu", str(one_core_cpu())]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=environment_
        )
        self.ready: dict = {}

    def build(self) -> dict:
        """Wait for the worker's imports, let it build and warm up; return what it reports."""
        self._answer()
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

    def run(self, count: int) -> dict:
        """Return the worker's timing of ``count`` steps."""
        self.process.stdin.write(f"{count}\n")
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


def _quartiles(samples: Sequence[float]) -> tuple[float, float, float]:
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
) -> dict:
    """Return the timings of every implementation on one size, each in its own process, interleaved.

    The workers import side by side, then build and warm up one after the
    other (so that compilation and memory are measured without the others
    busy), then take turns round-robin, the first one rotating, each turn
    after a pause of ``settle_seconds``.
    """
    started: dict[str, Worker] = {}
    workers: dict[str, Worker] = {}
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    try:
        for implementation in implementations:
            started[implementation.name] = Worker(size, implementation)
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
                "own_kernels": implementation.own_kernels,
                **{key: value for key, value in ready.items() if key != "warm_step_seconds"},
                "steps_per_sample": max(1, math.ceil(sample_seconds / max(ready["warm_step_seconds"], 1e-9))),
                "samples": [],
                "cpu_per_wall": [],
                "page_faults_per_step": [],
            }
        names = list(workers)
        for round_index in range(repeats):
            offset = round_index % len(names)
            for name in names[offset:] + names[:offset]:
                time.sleep(settle_seconds)
                answer = workers[name].run(results[name]["steps_per_sample"])
                results[name]["samples"].append(answer["seconds_per_step"])
                results[name]["cpu_per_wall"].append(answer["cpu_per_wall"])
                results[name]["page_faults_per_step"].append(answer["page_faults_per_step"])
    finally:
        for worker in started.values():
            worker.close()
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
        "errors": errors,
        "ratios": {group: _ratios(results, group) for group in THREAD_GROUPS},
    }


def _ratios(results: dict, threads: str) -> dict:
    """Return reference / fastest float64 framework among implementations with the same ``threads``."""
    group = {name: result for name, result in results.items() if result["threads"] == threads}
    frameworks = [name for name, r in group.items() if r["family"] != "reference" and r["dtype"] == "float64"]
    if not frameworks:
        return {}
    fastest = min(frameworks, key=lambda name: group[name]["median"])
    ratios: dict[str, Any] = {"fastest_float64_framework": fastest}
    for name, reference in group.items():
        if reference["family"] != "reference":
            continue
        per_round = [ours / theirs for ours, theirs in zip(reference["samples"], group[fastest]["samples"])]
        first, median, third = _quartiles(per_round)
        ratios[name] = {
            "of_medians": reference["median"] / group[fastest]["median"],
            "per_round_median": median,
            "per_round_q1": first,
            "per_round_q3": third,
            "versus": {framework: reference["median"] / group[framework]["median"] for framework in frameworks},
        }
    return ratios


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


def _own_kernels_environment() -> dict[str, str]:
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
            "import json; from conformance.bench import matmul_peak; "
            f"print(json.dumps(matmul_peak({size}, {repeats}, with_torch=False)))"
        )
        answer = subprocess.run(
            [sys.executable, "-c", code], env=_own_kernels_environment(), capture_output=True, text=True
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


def targets(document: dict) -> list[dict]:
    """Return the issue's targets, each with the numbers that decide it.

    Large sizes: the reference's train step within LARGE_SIZE_TARGET times
    the fastest float64 framework's, under the environment's OpenBLAS
    kernels and, where the environment names them, under OpenBLAS's own
    choice. Seed sizes: reference.sgd_step faster than torch eager
    (float64). Judged on the libraries' default threads; the one-core group,
    and sgd_step at the large sizes (which copies its arguments every call),
    are reported beside them as context.
    """
    checks = []
    for size in document["sizes"]:
        results = size["implementations"]
        for group in THREAD_GROUPS:
            ratios = size["ratios"].get(group) or {}
            suffix = ONE_CORE if group == "one core" else ""
            if size["kind"] == "large":
                for reference in (REFERENCE_TRAIN, REFERENCE_TRAIN + OWN_KERNELS, REFERENCE_PUBLIC):
                    name = reference + suffix
                    if name not in ratios:
                        continue
                    ratio = ratios[name]
                    checks.append({
                        "size": size["name"], "threads": group, "reference": name,
                        "against": ratios["fastest_float64_framework"], "target": f"<= {LARGE_SIZE_TARGET}x",
                        "ratio": ratio["of_medians"],
                        "per_round": [ratio["per_round_q1"], ratio["per_round_median"], ratio["per_round_q3"]],
                        "met": ratio["of_medians"] <= LARGE_SIZE_TARGET,
                        "context": bool(suffix) or name.startswith(REFERENCE_PUBLIC),
                    })
            torch_name = "torch eager float64" + suffix
            if size["kind"] == "seed" and torch_name in results and REFERENCE_PUBLIC + suffix in results:
                ours, theirs = results[REFERENCE_PUBLIC + suffix], results[torch_name]
                first, median, third = _quartiles([a / b for a, b in zip(ours["samples"], theirs["samples"])])
                checks.append({
                    "size": size["name"], "threads": group, "reference": REFERENCE_PUBLIC + suffix,
                    "against": torch_name, "target": "< 1x", "ratio": ours["median"] / theirs["median"],
                    "per_round": [first, median, third], "met": ours["median"] < theirs["median"],
                    "context": bool(suffix),
                })
    return checks


# -- the conformance suite's throughput (--suite) ---------------------------------------------


def suite_throughput(examples: int, specs: Sequence[str] = SUITE_ADAPTERS) -> dict:
    """Return how many Hypothesis cases per second go through three-way gradient conformance.

    Each case from ``conformance.strategies.cases()`` (derandomized, so every
    pass draws the same cases) goes through ``compare_loss_and_gradients`` for
    every adapter in ``specs``; each of those computes the reference's
    gradients, the tolerance model's bounds and the adapter's gradients.
    The adapters are first warmed up on document 000's network: a
    framework's one-off start-up (JAX's backend, and the padded adapter's one
    compilation per dtype, which serves every drawn network) is timed apart,
    as ``warm_up_seconds``. Then two
    passes over the same cases: the ``first`` pays every compilation JAX
    still needs for them, as a fresh test session does; the ``repeated``
    one finds them all compiled, as every later test of a session does.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    from adapters.loading import load_adapter
    from adapters.protocol import AdapterUnavailable
    from conformance.comparisons import OutsideModel, compare_loss_and_gradients
    from conformance.strategies import Case, cases

    adapters, unavailable = [], {}
    for spec in specs:
        try:
            adapters.append(load_adapter(spec))
        except AdapterUnavailable as reason:
            unavailable[spec] = str(reason)

    def one_pass() -> dict:
        seconds = {adapter.label: 0.0 for adapter in adapters}
        outcomes = {adapter.label: {"pass": 0, "fail": 0, "outside model": 0, "error": 0} for adapter in adapters}
        reference_seconds, drawn = [0.0], [0]

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
        return {
            "cases": drawn[0],
            "seconds": total,
            "cases_per_second": drawn[0] / total if total else None,
            "adapter_checks_per_second": drawn[0] * len(adapters) / total if total else None,
            "seconds_by_adapter": seconds,
            "reference_gradient_seconds": reference_seconds[0],
            "hypothesis_and_other_seconds": total - sum(seconds.values()) - reference_seconds[0],
            "outcomes": outcomes,
        }

    warm_up, start = example("000"), time.perf_counter()
    for adapter in adapters:
        compare_loss_and_gradients(adapter, Case(warm_up.network, warm_up.params, warm_up.x, warm_up.y))
    warm_up_seconds = time.perf_counter() - start
    first = one_pass()
    return {
        "adapters": [adapter.label for adapter in adapters],
        "unavailable": unavailable,
        "examples": examples,
        "warm_up_seconds": warm_up_seconds,
        "first": first,
        "repeated": one_pass(),
    }


# -- environment ------------------------------------------------------------------------------


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


def _serve_from_command_line(arguments: Sequence[str]) -> int:
    """``python -m conformance.bench --worker SIZE IMPLEMENTATION [--cpu N]``: what ``Worker`` starts."""
    if len(arguments) not in (3, 5) or arguments[0] != "--worker" or arguments[3:4] not in ([], ["--cpu"]):
        print("usage: python -m conformance.bench --worker SIZE IMPLEMENTATION [--cpu N] (started by `backprop bench`)",
              file=sys.stderr)
        return 2
    if len(arguments) == 5:  # before any framework is imported: XLA sizes its thread pool from this
        os.sched_setaffinity(0, {int(arguments[4])})
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints stays out of the protocol
    serve(arguments[1], arguments[2], protocol, sys.stdin)
    return 0


if __name__ == "__main__":
    sys.exit(_serve_from_command_line(sys.argv[1:]))
