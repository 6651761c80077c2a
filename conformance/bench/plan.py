"""What ``backprop bench`` measures: the sizes, the implementations and their constants.

One step of gradient descent (forward, loss, backward, update) with the
model built and the batch in memory, of:

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
``reference loss_and_gradients``  the public call alone, validated: compared with
                        the frameworks' whole step.
``... adam``            the same steps with Adam at its defaults (lr 0.01):
                        ``reference.optimizer_step`` (public), one iteration of
                        ``reference.train`` with the optimizer, ``torch.optim.Adam``
                        and ``optax.adam``; their ratios form a group of their own.

Every implementation chains its steps (each starts from the params the last
one produced) at a small learning rate. The frameworks run in float64, the
like-for-like comparison, and in float32 for context. A second group runs
the float64 steps held to one core (CPU affinity, and one thread in
OpenBLAS and torch): on a shared machine, where other processes take
cores, a library's thread pool can lose more to waiting for descheduled
threads than it gains.

The pipeline: ``bench.worker`` (one implementation at one size, in its own
process) -> ``bench.measure`` (the parent: workers interleaved, matmul
peaks, environment), ``bench.matmuls`` (a step's matmuls alone, per
library) and ``bench.suite_speed`` -> ``bench.targets`` (judging)
-> ``bench.render`` (performance.md) -> ``bench.command``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop_conformance.bench.steppers import (
    ReferenceAdamPublicStepper,
    ReferenceAdamTrainStepper,
    ReferenceGradientsStepper,
    ReferencePublicStepper,
    ReferenceTrainStepper,
    adam,
    jax_adam_float64,
    jax_float32,
    jax_float64,
    torch_adam_float64,
    torch_float32,
    torch_float64,
)
from backprop_conformance.reference.network import Network, Params, init_params
from backprop_conformance.reference.seeds import example
from backprop_conformance.reference.training import sgd_step, train

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
#: Then untimed steps for this long before the sample: a thread pool that idled through the pause is slow to
#: wake (XLA's most: a 60 ms sample of jax.jit at 784-256-256-10 straight after it ran 1.7x its steady time).
WARM_SECONDS = 0.1
QUICK_WARM_SECONDS = 0.005
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
    #: The update rule: "sgd", or "adam" (torch.optim.Adam, optax.adam, the reference's at their defaults).
    rule: str = "sgd"

    @property
    def group(self) -> str:
        """The group whose ratios are taken among themselves (``THREAD_GROUPS``)."""
        if self.rule == "adam":
            return "adam, one core" if self.one_core else "adam"
        return "one core" if self.one_core else "default"


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
    if network.loss_name == "cross_entropy":
        y = rng.integers(0, network.sizes[-1], size.batch)
    else:  # targets in [0, 1] suit both mse and bce
        y = rng.uniform(0.0, 1.0, (size.batch, network.sizes[-1]))
    return init_params(network, seed=seed), x, y


REFERENCE_PUBLIC, REFERENCE_TRAIN = "reference sgd_step", "reference train step"
REFERENCE_GRADIENTS = "reference loss_and_gradients"
REFERENCE_ADAM_PUBLIC, REFERENCE_ADAM_TRAIN = "reference optimizer_step adam", "reference train step adam"
ONE_CORE = ", 1 core"
#: The variable that, when this environment sets it, names NumPy's OpenBLAS kernels instead of its detection.
CORETYPE_VARIABLE = "OPENBLAS_CORETYPE"
OWN_KERNELS = f", {CORETYPE_VARIABLE} unset"
IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(REFERENCE_PUBLIC, "reference", "float64", ReferencePublicStepper),
    Implementation(REFERENCE_GRADIENTS, "reference", "float64", ReferenceGradientsStepper),
    Implementation(REFERENCE_TRAIN, "reference", "float64", ReferenceTrainStepper),
    # Measured only where the environment sets OPENBLAS_CORETYPE (see ``blas_pinned``).
    Implementation(REFERENCE_TRAIN + OWN_KERNELS, "reference", "float64", ReferenceTrainStepper, own_kernels=True),
    Implementation("torch eager float64", "torch", "float64", torch_float64),
    Implementation("jax.jit float64", "jax", "float64", jax_float64),
    Implementation("torch eager float32", "torch", "float32", torch_float32),
    Implementation("jax.jit float32", "jax", "float32", jax_float32),
    # Context for a shared machine: the float64 steps, each held to one core.
    Implementation(REFERENCE_PUBLIC + ONE_CORE, "reference", "float64", ReferencePublicStepper, one_core=True),
    Implementation(REFERENCE_TRAIN + ONE_CORE, "reference", "float64", ReferenceTrainStepper, one_core=True),
    Implementation(
        REFERENCE_TRAIN + OWN_KERNELS + ONE_CORE, "reference", "float64", ReferenceTrainStepper,
        one_core=True, own_kernels=True,
    ),
    Implementation("torch eager float64" + ONE_CORE, "torch", "float64", torch_float64, one_core=True),
    Implementation("jax.jit float64" + ONE_CORE, "jax", "float64", jax_float64, one_core=True),
    # Adam at each one's defaults (the same rule: adapters.divergences), default threads: its own group.
    Implementation(REFERENCE_ADAM_PUBLIC, "reference", "float64", ReferenceAdamPublicStepper, rule="adam"),
    Implementation(REFERENCE_ADAM_TRAIN, "reference", "float64", ReferenceAdamTrainStepper, rule="adam"),
    Implementation("torch eager adam float64", "torch", "float64", torch_adam_float64, rule="adam"),
    Implementation("jax.jit adam float64", "jax", "float64", jax_adam_float64, rule="adam"),
    # And held to one core, as context: how far Adam's passes on one core are from the fused kernels on one.
    Implementation(REFERENCE_ADAM_PUBLIC + ONE_CORE, "reference", "float64", ReferenceAdamPublicStepper, one_core=True,
                   rule="adam"),
    Implementation(REFERENCE_ADAM_TRAIN + ONE_CORE, "reference", "float64", ReferenceAdamTrainStepper, one_core=True,
                   rule="adam"),
    Implementation("torch eager adam float64" + ONE_CORE, "torch", "float64", torch_adam_float64, one_core=True,
                   rule="adam"),
    Implementation("jax.jit adam float64" + ONE_CORE, "jax", "float64", jax_adam_float64, one_core=True, rule="adam"),
)
#: (an Adam step, the same implementation's plain step): their difference is what its Adam update costs.
UPDATE_PAIRS = tuple((adam + threads, plain + threads) for threads in ("", ONE_CORE) for adam, plain in (
    (REFERENCE_ADAM_TRAIN, REFERENCE_TRAIN), (REFERENCE_ADAM_PUBLIC, REFERENCE_PUBLIC),
    ("torch eager adam float64", "torch eager float64"), ("jax.jit adam float64", "jax.jit float64")))
#: The groups whose ratios are taken among themselves: default threads, held to one core, and Adam's two.
THREAD_GROUPS = ("default", "one core", "adam", "adam, one core")


def expected_params(implementation: Implementation, network: Network, params: Params, x: np.ndarray,
                    y: np.ndarray) -> Params:
    """Return the reference's params after one step of ``implementation``'s rule: what it must compute."""
    if implementation.rule == "adam":
        return train(network, params, x, y, [np.arange(len(x))], adam("torch", LEARNING_RATE)).params
    return sgd_step(network, params, x, y, LEARNING_RATE)


def implementation_named(name: str) -> Implementation:
    return next(implementation for implementation in IMPLEMENTATIONS if implementation.name == name)


def framework_available(family: str) -> str | None:
    """Return None if ``family``'s modules are installed, else the reason (without importing them)."""
    for module in {"reference": (), "torch": ("torch",), "jax": ("jax", "optax")}[family]:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None
