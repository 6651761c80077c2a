"""Hypothesis draws for the reference's unit tests, and the measures their tolerances need.

Every ``draw_*`` function takes the test's ``st.data()`` object and draws
through it with a ``label=``, so a failing example prints as
"Draw 8 (W1): array(...)" (``@st.composite`` cannot label its draws: its
``draw`` takes no text label). Elements are bounded and finite.

The rest measures a drawn problem: saturated units, relu units near their
kink, and the magnitudes of the terms each gradient entry sums, which bound
how far two correct float64 evaluations of it can differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from backprop_conformance.reference import Network, Params
from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS
from backprop_conformance.reference.backprop import _forward
from backprop_conformance.reference.conventions import LOSSES, REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from backprop_conformance.reference.losses import normaliser, one_hot

SMOOTH_ACTIVATIONS = ("identity", "sigmoid", "tanh")
ALL_ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu")

# Values below this magnitude are drawn as exactly 0. The complex step
# multiplies every input by h = 1e-30, and a product such as 1e-30 * 1e-300
# underflows to 0: data that small tests float64's range, not backprop.
SMALLEST_NONZERO = 1e-6


def _flush_tiny(value: float) -> float:
    return 0.0 if abs(value) < SMALLEST_NONZERO else value


def bounded_floats(bound: float) -> st.SearchStrategy[float]:
    """Return finite floats in [-bound, bound], with |v| < SMALLEST_NONZERO flushed to 0."""
    return st.floats(
        min_value=-bound, max_value=bound, allow_nan=False, allow_infinity=False, allow_subnormal=False
    ).map(_flush_tiny)


def unit_interval_floats() -> st.SearchStrategy[float]:
    """Return bce targets: hard labels 0 and 1 as often as soft ones in [0, 1]."""
    soft = st.floats(min_value=0.0, max_value=1.0, allow_nan=False, allow_subnormal=False).map(_flush_tiny)
    return st.one_of(st.sampled_from([0.0, 1.0]), soft)


@dataclass(frozen=True)
class Problem:
    """A network with params and one batch: everything a gradient needs."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray

    def describe(self) -> str:
        """Return the network and batch size in one line."""
        return f"{self.network.describe()}, m={self.x.shape[0]}"

    def repro(self) -> str:
        """Return a Python snippet that rebuilds this problem, for ``hypothesis.note``."""
        pairs = ", ".join(
            f"(np.array({weight.tolist()!r}), {'None' if bias is None else f'np.array({bias.tolist()!r})'})"
            for weight, bias in self.params
        )
        return (
            "import numpy as np\nimport reference\nfrom reference import Network\n"
            f"network = {self.network!r}\n"
            f"params = [{pairs}]\n"
            f"x = np.array({self.x.tolist()!r})\n"
            f"y = np.array({self.y.tolist()!r})\n"
            "print(reference.loss_and_gradients(network, params, x, y))"
        )

    def pre_activations(self) -> list[np.ndarray]:
        """Return z_1, ..., z_L of the batch."""
        zs, _ = _forward(self.network, self.params, self.x)
        return zs

    def outputs(self) -> np.ndarray:
        """Return a_L of the batch."""
        _, activations = _forward(self.network, self.params, self.x)
        return activations[-1]


def draw_network(
    data: st.DataObject,
    activations: tuple[str, ...],
    losses: tuple[str, ...] = LOSSES,
    max_depth: int = 4,
    max_width: int = 6,
) -> Network:
    """Return a Network: depth 1..max_depth, widths 1..max_width, any reduction and bias."""
    loss = data.draw(st.sampled_from(losses), label="loss")
    depth = data.draw(st.integers(1, max_depth), label="depth")
    widths = data.draw(
        st.lists(st.integers(1, max_width), min_size=depth, max_size=depth), label="input and hidden widths"
    )
    smallest_output = 2 if loss == "cross_entropy" else 1
    output_width = data.draw(st.integers(smallest_output, max_width), label="output width")
    hidden = data.draw(
        st.lists(st.sampled_from(activations), min_size=depth - 1, max_size=depth - 1),
        label="hidden activations",
    )
    required = REQUIRED_OUTPUT_ACTIVATION[loss]
    output = required or data.draw(st.sampled_from(activations), label="output activation")
    return Network(
        (*widths, output_width),
        (*hidden, output),
        loss,
        bias=data.draw(st.booleans(), label="bias"),
        reduction=data.draw(st.sampled_from(REDUCTIONS), label="reduction"),
    )


def draw_params(data: st.DataObject, network: Network, bound: float = 1.0) -> Params:
    """Return float64 params for ``network`` with entries in [-bound, bound]."""
    params: Params = []
    for layer, (n_in, n_out) in enumerate(zip(network.sizes[:-1], network.sizes[1:]), start=1):
        weight = data.draw(arrays(np.float64, (n_out, n_in), elements=bounded_floats(bound)), label=f"W{layer}")
        bias = (
            data.draw(arrays(np.float64, (n_out,), elements=bounded_floats(bound)), label=f"b{layer}")
            if network.bias
            else None
        )
        params.append((weight, bias))
    return params


def draw_batch(
    data: st.DataObject, network: Network, max_batch: int = 4, bound: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return (x, y): x in [-bound, bound]; y as the network's loss needs it."""
    m = data.draw(st.integers(1, max_batch), label="batch size m")
    x = data.draw(arrays(np.float64, (m, network.sizes[0]), elements=bounded_floats(bound)), label="x")
    n_out = network.sizes[-1]
    if network.loss_name == "cross_entropy":
        y = data.draw(arrays(np.int64, (m,), elements=st.integers(0, n_out - 1)), label="y (class labels)")
    elif network.loss_name in ("bce", "bce_with_logits"):
        y = data.draw(arrays(np.float64, (m, n_out), elements=unit_interval_floats()), label="y (bce targets)")
    else:
        y = data.draw(arrays(np.float64, (m, n_out), elements=bounded_floats(bound)), label="y (mse targets)")
    return x, y


def draw_problem(
    data: st.DataObject,
    activations: tuple[str, ...],
    losses: tuple[str, ...] = LOSSES,
    max_depth: int = 4,
    max_width: int = 6,
    max_batch: int = 4,
) -> Problem:
    """Return a drawn network with params and a batch."""
    network = draw_network(data, activations, losses, max_depth, max_width)
    params = draw_params(data, network)
    x, y = draw_batch(data, network, max_batch)
    return Problem(network, params, x, y)


# The reference computes f'(z) as 1 - tanh(z)^2 and s (1 - s): each loses
# eps / f'(z) of relative accuracy once the unit saturates (pinned in
# test_reference_saturation.py). Above this slope that error stays below 2.2e-14.
SMALLEST_ACCURATE_SLOPE = 1e-2


def saturated_units(problem: Problem) -> int:
    """Return how many tanh units, or sigmoid units with z > 0, have f'(z) < SMALLEST_ACCURATE_SLOPE.

    A sigmoid with z < 0 is exempt: s is small there and s (1 - s) exact to
    rounding. So is a bce output layer: its dJ/dz = a - y never uses the slope
    (its cancellation when a is near y is measured by ``gradient_magnitudes``).
    """
    count = 0
    layers = list(zip(problem.pre_activations(), problem.network.activations))
    if problem.network.loss_name in ("bce", "bce_with_logits"):
        layers = layers[:-1]
    for z, name in layers:
        if name == "tanh":
            slope = 1.0 / np.cosh(np.clip(z, -700.0, 700.0)) ** 2
        elif name == "sigmoid":
            slope = 1.0 / (2.0 + 2.0 * np.cosh(np.clip(np.maximum(z, 0.0), 0.0, 700.0)))
        else:
            continue
        count += int(np.count_nonzero(slope < SMALLEST_ACCURATE_SLOPE))
    return count


# Any two float64 evaluations of a gradient entry, summed in any order, differ
# by at most this times the entry of ``gradient_magnitudes``: 45 eps, the
# forward error bound of the sums in a depth-4, width-6 backward pass (about
# depth * (width + 2) roundings each side), with margin.
ROUNDING_FLOOR = 1e-14


def gradient_magnitudes(problem: Problem) -> Params:
    """Return the backward pass run on absolute values: |dJ/dtheta| with no cancellation.

    Every quantity is replaced by its magnitude (|W|, |a|, |f'(z)|, and
    |a| + |y| for the output residual a - y), so each entry is the sum of the
    magnitudes of the terms whose signed sum is the gradient. Any float64
    evaluation of the gradient, in any order, is off by at most a modest
    multiple of eps times this (the forward error bound of a sum): the scale
    that rounding noise is relative to when the gradient itself cancels.
    """
    network, params = problem.network, problem.params
    zs, activations = _forward(network, params, problem.x)
    n = normaliser(network.loss, network.reduction, problem.x.shape[0], network.sizes[-1])
    outputs = activations[-1]
    if network.loss_name == "cross_entropy":
        probabilities = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        delta = (probabilities + one_hot(problem.y, outputs.shape[1])) / n
    else:
        delta = (np.abs(outputs) + np.abs(problem.y)) / n
        if network.loss == "mse":
            delta = 2.0 * delta * np.abs(ACTIVATION_FUNCTIONS[network.activations[-1]].derivative(zs[-1]))
    magnitudes: Params = [None] * network.depth  # type: ignore[list-item]
    for index in reversed(range(network.depth)):
        weight, bias = params[index]
        magnitudes[index] = (delta.T @ np.abs(activations[index]), None if bias is None else delta.sum(axis=0))
        if index > 0:
            slope = ACTIVATION_FUNCTIONS[network.activations[index - 1]].derivative(zs[index - 1])
            delta = (delta @ np.abs(weight)) * np.abs(slope)
    return magnitudes


def pre_activation_magnitudes(problem: Problem) -> list[np.ndarray]:
    """Return sum |W| |a| + |b| for every z_l: the scale of z's rounding error."""
    _, activations = _forward(problem.network, problem.params, problem.x)
    magnitudes = []
    for (weight, bias), previous in zip(problem.params, activations[:-1]):
        magnitude = np.abs(previous) @ np.abs(weight).T
        magnitudes.append(magnitude if bias is None else magnitude + np.abs(bias))
    return magnitudes


def relu_units_near_kink(problem: Problem, margin: float) -> int:
    """Return how many relu pre-activations lie within margin * (their magnitude) of 0.

    A z that is exactly 0 because every term is 0 is 0 in any order of
    summation and not counted; a z that is small by cancellation is.
    """
    count = 0
    zs = problem.pre_activations()
    for z, magnitude, name in zip(zs, pre_activation_magnitudes(problem), problem.network.activations):
        if name == "relu":
            count += int(np.count_nonzero((np.abs(z) <= margin * magnitude) & (magnitude > 0)))
    return count
