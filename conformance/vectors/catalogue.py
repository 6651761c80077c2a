"""Which cases the golden vectors hold: the documents, a full grid, edge cases, and seeded random networks.

Everything is drawn from ``numpy.random.default_rng`` seeded with
``(seed, part, index)``, so one seed gives the same cases on every machine
and a case does not move when another part grows. A drawn case the
tolerance model promises nothing for in float64 (a pre-activation within
rounding of a kink, a partly saturated bce) is drawn again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from backprop_conformance.reference.conventions import REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizers import Optimizer
from backprop_conformance.reference.seeds import EXAMPLES, example
from backprop_conformance.reference.specs import base
from backprop_conformance.reference.training import batch_schedule
from backprop_conformance.suite.case import ACTIVATION_SPECS, LOSS_SPECS, Case
from backprop_conformance.suite.expectations import OutsideModel, expect_optimizer_train, expect_train

#: Random networks beyond the fixed coverage, unless --count says otherwise.
DEFAULT_COUNT = 50
#: Draws of one case before giving up on the tolerance model's promise (never reached in practice).
ATTEMPTS = 50


@dataclass
class VectorCase:
    """One case of the file: what it is for, its flags, and the problem itself."""

    comment: str
    flags: tuple[str, ...]
    case: Case


def _rng(seed: int, part: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, part, index])


def _params(rng: np.random.Generator, network: Network, scale: float = 1.5) -> Params:
    params = []
    for n_in, n_out in zip(network.sizes[:-1], network.sizes[1:]):
        bound = scale / np.sqrt(n_in)
        weight = rng.uniform(-bound, bound, (n_out, n_in))
        params.append((weight, rng.uniform(-0.5, 0.5, n_out) if network.bias else None))
    return params


def _targets(rng: np.random.Generator, network: Network, samples: int) -> np.ndarray:
    n_out, loss = network.sizes[-1], network.loss_name
    if loss == "cross_entropy":
        return rng.integers(0, n_out, samples)
    if loss in ("bce", "bce_with_logits"):
        return rng.uniform(0.0, 1.0, (samples, n_out))
    return rng.uniform(-1.0, 1.0, (samples, n_out))


def _schedule(rng: np.random.Generator, samples: int) -> list[np.ndarray]:
    batch = max(1, (samples + 1) // 2)
    return batch_schedule(samples, batch, epochs=2, seed=int(rng.integers(0, 2**31)))


def _draw(seed: int, part: int, index: int, network: Network, samples: int,
          learning_rate: float = 0.1, change: Callable[[Case], Case] | None = None) -> Case:
    """Return a case of ``network`` the tolerance model covers in float64, drawn from (seed, part, index),
    after ``change`` (an edge case's construction) where given."""
    for attempt in range(ATTEMPTS):
        rng = _rng(seed, part, index * ATTEMPTS + attempt)
        x = rng.uniform(-2.0, 2.0, (samples, network.sizes[0]))
        case = Case(network, _params(rng, network), x, _targets(rng, network, samples), learning_rate,
                    _schedule(rng, samples))
        if change is not None:
            case = change(case)
        try:
            if case.optimizer is None:
                expect_train(case, "float64")
            else:
                expect_optimizer_train(case, case.optimizer, "float64")
        except OutsideModel:
            continue
        return case
    raise RuntimeError(f"no case of {network.describe()} within the tolerance model in {ATTEMPTS} draws")


def _output_activation(loss: str, hidden: str) -> str:
    return REQUIRED_OUTPUT_ACTIVATION[base(loss)] or hidden


def documents() -> Iterator[VectorCase]:
    """The three documents' networks, params, data and schedules, as the documents give them."""
    for key in EXAMPLES:
        found = example(key)
        case = Case(found.network, found.params, found.x, found.y, found.learning_rate, found.batches,
                    f"document {key}")
        yield VectorCase(f"document {key}: {found.title}", ("document",), case)


def grid(seed: int) -> Iterator[VectorCase]:
    """Every activation x loss x reduction x bias, on a 3-4-k network (the activation also at the output
    where the loss allows it), three samples, trained over two epochs of batches of two."""
    index = 0
    for hidden in ACTIVATION_SPECS:
        for loss in LOSS_SPECS:
            for reduction in REDUCTIONS:
                for bias in (True, False):
                    n_out = 3 if base(loss) == "cross_entropy" else 2
                    network = Network((3, 4, n_out), (hidden, _output_activation(loss, hidden)), loss, bias,
                                      reduction)
                    index += 1
                    yield VectorCase(f"grid: {network.describe()}", ("grid",), _draw(seed, 1, index, network, 3))


def _with_rows_zeroed(case: Case, layer: int, rows: list[int]) -> Case:
    params = [(w.copy(), None if b is None else b.copy()) for w, b in case.params]
    weight, bias = params[layer]
    weight[rows] = 0.0
    if bias is not None:
        bias[rows] = 0.0
    return Case(case.network, params, case.x, case.y, case.learning_rate, case.batches)


def _with_params(case: Case, change: Callable[[Params], None]) -> Case:
    params = [(w.copy(), None if b is None else b.copy()) for w, b in case.params]
    change(params)
    return Case(case.network, params, case.x, case.y, case.learning_rate, case.batches)


def edges(seed: int) -> Iterator[VectorCase]:
    """Dead units at each kink, saturation, softplus past torch's threshold, width 1, batch 1, deep, wide."""
    for index, activation in enumerate(("relu", "leaky_relu", "leaky_relu(negative_slope=0.2)", "elu(alpha=0.5)")):
        network = Network((3, 4, 1), (activation, "identity"), "mse")
        # Rows of W1 and b1 zero: z1 is exactly 0 there in any dtype, and the kink's convention decides.
        case = _draw(seed, 2, index, network, 4, change=lambda case: _with_rows_zeroed(case, 0, [0, 2]))
        yield VectorCase(f"dead units: two {activation} units with z = 0 exactly", ("dead-units",), case)
    network = Network((2, 3, 1), ("tanh", "sigmoid"), "bce")

    def saturate(params: Params) -> None:  # z2 about 45: sigmoid is 1 beyond doubt in float32 and float64
        weight, bias = params[1]
        weight[:] = 0.0
        bias[:] = 45.0

    def saturated(case: Case) -> Case:
        case = _with_params(case, saturate)
        return Case(case.network, case.params, case.x, np.ones_like(case.y), case.learning_rate, case.batches)

    yield VectorCase("saturated bce: sigmoid(45) is 1 in any dtype", ("saturated",),
                     _draw(seed, 2, 10, network, 3, change=saturated))
    network = Network((2, 2, 1), ("softplus", "identity"), "mse")

    def past_threshold(params: Params) -> None:  # z1 = 25 + a little: torch's Softplus returns z there
        weight, bias = params[0]
        weight[:] = np.array([[0.5, -0.25], [0.125, 0.375]])
        bias[:] = 25.0

    yield VectorCase("softplus at z about 25, past torch's threshold 20", ("softplus-threshold",),
                     _draw(seed, 2, 11, network, 2, learning_rate=0.01,
                           change=lambda case: _with_params(case, past_threshold)))
    shapes = [
        ("width 1", ("width-1",), Network((1, 1, 1), ("tanh", "identity"), "mse"), 3),
        ("a 1-unit hidden layer", ("width-1",), Network((3, 1, 2), ("sigmoid", "identity"), "mse"), 3),
        ("batch 1", ("batch-1",), Network((3, 4, 3), ("relu", "identity"), "cross_entropy"), 1),
        ("a batch of 16", ("wide-batch",), Network((2, 5, 1), ("tanh", "sigmoid"), "bce"), 16),
        ("five layers", ("deep",),
         Network((2, 3, 3, 3, 3, 1), ("tanh", "silu", "gelu", "elu", "identity"), "huber"), 4),
    ]
    for index, (what, flags, network, samples) in enumerate(shapes, start=20):
        yield VectorCase(f"{what}: {network.describe()}", flags, _draw(seed, 2, index, network, samples))


#: Optimizers of the vectors: each rule at its defaults and with settings that move it, in both conventions.
OPTIMIZER_SETTINGS = (
    ("sgd", {"lr": 0.1, "momentum": 0.9}),
    ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adam", {"lr": 0.01}), ("adam", {"lr": 0.01, "amsgrad": True, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("adamw", {"lr": 0.01}), ("rmsprop", {"lr": 0.01}), ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.5}),
    ("adagrad", {"lr": 0.1}),
)


def optimizer_cases(seed: int) -> Iterator[VectorCase]:
    """Every optimizer setting of OPTIMIZER_SETTINGS in torch's and optax's convention, on a 3-4-2 network
    trained over 3 shuffled epochs of batches of 2 of 7 samples (12 steps, a partial batch in each epoch)."""
    network = Network((3, 4, 2), ("tanh", "identity"), "mse")
    for index, (name, settings) in enumerate(OPTIMIZER_SETTINGS):
        schedule = batch_schedule(7, 2, epochs=3, seed=index)
        for convention in ("torch", "optax"):  # the same draw for both: the two conventions side by side
            optimizer = Optimizer(name, convention, **settings)

            def with_optimizer(case: Case, optimizer: Optimizer = optimizer, batches: list = schedule) -> Case:
                return Case(case.network, case.params, case.x, case.y, optimizer.lr, batches, optimizer=optimizer)

            yield VectorCase(f"optimizer: {optimizer.describe()}", ("optimizer",),
                             _draw(seed, 5, index, network, 7, change=with_optimizer))


def random_cases(seed: int, count: int) -> Iterator[VectorCase]:
    """``count`` networks of 1 to 4 layers of width 1 to 6, any pieces, batch 1 to 8, rate 0.01 to 1."""
    for index in range(count):
        rng = _rng(seed, 3, index)
        depth = int(rng.integers(1, 5))
        loss = str(rng.choice(LOSS_SPECS))
        hidden = [str(rng.choice(ACTIVATION_SPECS)) for _ in range(depth)]
        activations = (*hidden[:-1], _output_activation(loss, hidden[-1]))
        sizes = tuple(int(n) for n in rng.integers(1, 7, depth + 1))
        if base(loss) == "cross_entropy" and sizes[-1] < 2:
            sizes = (*sizes[:-1], 2)
        network = Network(sizes, activations, loss, bool(rng.integers(0, 2)), str(rng.choice(REDUCTIONS)))
        rate = float(10 ** rng.uniform(-2, 0))
        yield VectorCase(f"random: {network.describe()}", ("random",),
                         _draw(seed, 4, index, network, int(rng.integers(1, 9)), rate))


def vector_cases(seed: int, count: int = DEFAULT_COUNT) -> list[VectorCase]:
    """Return every case of the file for ``seed``, in order: documents, grid, edges, optimizers, random."""
    return [*documents(), *grid(seed), *edges(seed), *optimizer_cases(seed), *random_cases(seed, count)]
