"""Independent computations of the gradient that check the layer-wise backward pass.

The reference does not trust itself. Each function here returns the same
gradients as ``reference.loss_and_gradients`` by another route:

``chain_rule_gradients``
    Document 000's pseudocode: build the network as a graph of scalar nodes,
    evaluate it in topological order, then visit it in reverse topological
    order, multiplying local derivatives along every edge. Scalar Python
    (``math``), no matrices, shares no arithmetic with ``reference.backprop``.
``finite_difference_gradients``
    Central differences ``(J(theta + h) - J(theta - h)) / 2h``: truncation
    error O(h^2), rounding O(eps / h); with h = eps^(1/3) max(1, |theta|)
    the relative error is about 1e-10. Valid away from relu's kink.
``complex_step_gradients``
    ``Im J(theta + i h) / h`` with h = 1e-30: no subtraction, so exact to
    rounding for analytic activations (identity, sigmoid, tanh).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from backprop_conformance.reference.backprop import _loss
from backprop_conformance.reference.conventions import PARAMETERS, parameter_name
from backprop_conformance.reference.losses import normaliser
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.specs import parse
from backprop_conformance.reference.validation import check_data, check_params

COMPLEX_STEP = 1e-30


def _each_parameter(params: Params):
    """Yield (layer index, slot, array) for every parameter array: slot 0 is W, 1 is b."""
    for index, (weight, bias) in enumerate(params):
        yield index, 0, weight
        if bias is not None:
            yield index, 1, bias


def _gradients_by_perturbation(
    params: Params, derivative: Callable[[Params, int, int, tuple], float]
) -> Params:
    grads = [[np.zeros_like(w), None if b is None else np.zeros_like(b)] for w, b in params]
    for index, slot, array in _each_parameter(params):
        for position in np.ndindex(array.shape):
            grads[index][slot][position] = derivative(params, index, slot, position)
    return [(w, b) for w, b in grads]


def _perturbed(params: Params, index: int, slot: int, position: tuple, step: Any, dtype: type) -> Params:
    copy = [[w.astype(dtype), None if b is None else b.astype(dtype)] for w, b in params]
    copy[index][slot][position] += step
    return [(w, b) for w, b in copy]


def finite_difference_gradients(network: Network, params: Any, x: Any, y: Any) -> Params:
    """Return dJ/dtheta by central finite differences (relative error ~1e-10)."""
    params = check_params(network, params)
    x, y = check_data(network, x, y)

    def derivative(params: Params, index: int, slot: int, position: tuple) -> float:
        theta = params[index][slot][position]
        step = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(theta))
        up = _loss(network, _perturbed(params, index, slot, position, step, np.float64), x, y)
        down = _loss(network, _perturbed(params, index, slot, position, -step, np.float64), x, y)
        return float((up - down) / (2 * step))

    return _gradients_by_perturbation(params, derivative)


def complex_step_gradients(network: Network, params: Any, x: Any, y: Any) -> Params:
    """Return dJ/dtheta = Im J(theta + i h) / h, exact to rounding for smooth networks."""
    params = check_params(network, params)
    x, y = check_data(network, x, y)

    def derivative(params: Params, index: int, slot: int, position: tuple) -> float:
        shifted = _perturbed(params, index, slot, position, 1j * COMPLEX_STEP, np.complex128)
        return float(np.imag(_loss(network, shifted, x, y)) / COMPLEX_STEP)

    return _gradients_by_perturbation(params, derivative)


# Scalar activations and their local derivatives, written with ``math`` so the
# chain-rule oracle shares no code with reference.activations.
def _scalar_sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _scalar_gelu(z: float) -> tuple[float, float]:
    cdf = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    return z * cdf, cdf + z * math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _scalar_gelu_tanh(z: float) -> tuple[float, float]:
    k = math.sqrt(2.0 / math.pi)
    t = math.tanh(k * (z + 0.044715 * z**3))
    return 0.5 * z * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * k * (1.0 + 3 * 0.044715 * z * z)


def _scalar_softplus(z: float) -> tuple[float, float]:
    return max(z, 0.0) + math.log1p(math.exp(-abs(z))), _scalar_sigmoid(z)


_SCALAR_ACTIVATIONS: dict[str, Callable[..., tuple[float, float]]] = {
    "identity": lambda z: (z, 1.0),
    "sigmoid": lambda z: (_scalar_sigmoid(z), _scalar_sigmoid(z) * (1.0 - _scalar_sigmoid(z))),
    "tanh": lambda z: (math.tanh(z), 1.0 - math.tanh(z) ** 2),
    "relu": lambda z: (max(z, 0.0), 1.0 if z > 0 else 0.0),
    "gelu": _scalar_gelu,
    "gelu_tanh": _scalar_gelu_tanh,
    "silu": lambda z: (z * _scalar_sigmoid(z), _scalar_sigmoid(z) * (1.0 + z * (1.0 - _scalar_sigmoid(z)))),
    "softplus": _scalar_softplus,
    "leaky_relu": lambda z, negative_slope: (z if z > 0 else negative_slope * z, 1.0 if z > 0 else negative_slope),
    "elu": lambda z, alpha: (z if z > 0 else alpha * math.expm1(z), 1.0 if z > 0 else alpha * math.exp(z)),
}


def _scalar_activation(spec: str) -> Callable[[float], tuple[float, float]]:
    name, values = parse(spec, PARAMETERS, "activation")
    return lambda z: _SCALAR_ACTIVATIONS[name](z, **values)


class _Graph:
    """A directed acyclic graph of scalar nodes, stored in topological order."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.values: list[float] = []
        # parents[node] = [(parent node, d node / d parent), ...]
        self.parents: list[list[tuple[int, float]]] = []

    def add(self, name: str, value: float, parents: list[tuple[int, float]] = ()) -> int:
        self.names.append(name)
        self.values.append(value)
        self.parents.append(list(parents))
        return len(self.values) - 1

    def adjoints(self, output: int) -> list[float]:
        """Return d output / d node for every node, visiting in reverse topological order."""
        adjoint = [0.0] * len(self.values)
        adjoint[output] = 1.0
        for node in reversed(range(output + 1)):
            for parent, local in self.parents[node]:
                adjoint[parent] += adjoint[node] * local
        return adjoint


def chain_rule_gradients(network: Network, params: Any, x: Any, y: Any) -> Params:
    """Return dJ/dtheta by the scalar chain rule on a node graph (document 000's pseudocode).

    Forward: visit every node in topological order and compute its value.
    Backward: visit the nodes in reverse order; each passes its adjoint to its
    parents times the local derivative on the edge. bce uses document 000's
    factors dJ/dY and dY/dh separately, so it is only usable away from saturation.
    """
    params = check_params(network, params)
    x, y = check_data(network, x, y)
    graph = _Graph()
    parameter_nodes = []
    for index, (weight, bias) in enumerate(params):
        w_name, b_name = parameter_name(index + 1, "W"), parameter_name(index + 1, "b")
        weight_nodes = {
            (j, k): graph.add(f"{w_name}[{j},{k}]", float(weight[j, k])) for j, k in np.ndindex(weight.shape)
        }
        bias_nodes = {} if bias is None else {j: graph.add(f"{b_name}[{j}]", float(bias[j])) for j in range(bias.size)}
        parameter_nodes.append((weight_nodes, bias_nodes))

    m, n_out = x.shape[0], network.sizes[-1]
    n = normaliser(network.loss, network.reduction, m, n_out)
    loss_terms: list[tuple[int, float]] = []
    total = 0.0
    for s in range(m):
        previous = [graph.add(f"x[{s},{i}]", float(value)) for i, value in enumerate(x[s])]
        for index, name in enumerate(network.activations):
            weight_nodes, bias_nodes = parameter_nodes[index]
            z_nodes = []
            for j in range(network.sizes[index + 1]):
                edges = []
                z = 0.0
                for k, a_node in enumerate(previous):
                    w_node = weight_nodes[(j, k)]
                    z += graph.values[w_node] * graph.values[a_node]
                    edges += [(w_node, graph.values[a_node]), (a_node, graph.values[w_node])]
                if bias_nodes:
                    z += graph.values[bias_nodes[j]]
                    edges.append((bias_nodes[j], 1.0))
                z_nodes.append(graph.add(f"z{index + 1}[{s},{j}]", z, edges))
            activation = _scalar_activation(name)
            previous = []
            for j, z_node in enumerate(z_nodes):
                value, slope = activation(graph.values[z_node])
                previous.append(graph.add(f"a{index + 1}[{s},{j}]", value, [(z_node, slope)]))
        outputs = [graph.values[node] for node in previous]
        loss_name, loss_parameters = parse(network.loss, PARAMETERS, "loss")
        if loss_name == "mse":
            for j, node in enumerate(previous):
                error = outputs[j] - float(y[s, j])
                total += error * error
                loss_terms.append((node, 2.0 * error / n))
        elif loss_name == "huber":
            delta = loss_parameters["delta"]
            for j, node in enumerate(previous):
                error = outputs[j] - float(y[s, j])
                total += 0.5 * error * error if abs(error) <= delta else delta * (abs(error) - 0.5 * delta)
                loss_terms.append((node, max(-delta, min(delta, error)) / n))
        elif loss_name in ("bce", "bce_with_logits"):
            for j, node in enumerate(previous):
                # bce_with_logits: one more node, the sigmoid of the logit, with its local derivative.
                logit = loss_name == "bce_with_logits"
                if logit:
                    probability = _scalar_sigmoid(outputs[j])
                    node = graph.add(f"p[{s},{j}]", probability, [(node, probability * (1.0 - probability))])
                a, target = graph.values[node], float(y[s, j])
                total -= target * math.log(a) + (1.0 - target) * math.log(1.0 - a)
                loss_terms.append((node, -(target / a - (1.0 - target) / (1.0 - a)) / n))
        else:
            smoothing = loss_parameters["label_smoothing"]
            shift = max(outputs)
            log_sum = shift + math.log(sum(math.exp(o - shift) for o in outputs))
            label, classes = int(y[s]), len(outputs)
            for j, node in enumerate(previous):
                target = (1.0 - smoothing) * (1.0 if j == label else 0.0) + smoothing / classes
                total += target * (log_sum - outputs[j])
                loss_terms.append((node, (math.exp(outputs[j] - log_sum) - target) / n))
    loss_node = graph.add("J", total / n, loss_terms)
    adjoint = graph.adjoints(loss_node)

    grads: Params = []
    for (weight, bias), (weight_nodes, bias_nodes) in zip(params, parameter_nodes):
        d_weight = np.zeros_like(weight)
        for position, node in weight_nodes.items():
            d_weight[position] = adjoint[node]
        d_bias = None if bias is None else np.array([adjoint[bias_nodes[j]] for j in range(bias.size)])
        grads.append((d_weight, d_bias))
    return grads


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Return ||actual - expected|| / ||expected|| (Frobenius), 0 when both are 0."""
    scale = float(np.linalg.norm(expected))
    difference = float(np.linalg.norm(np.asarray(actual) - expected))
    if scale == 0.0:
        return 0.0 if difference == 0.0 else math.inf
    return difference / scale


def worst_relative_error(grads: Params, expected: Params) -> float:
    """Return the largest norm-wise relative error over every parameter array."""
    errors = [
        relative_error(actual, wanted)
        for actual_pair, expected_pair in zip(grads, expected)
        for actual, wanted in zip(actual_pair, expected_pair)
        if wanted is not None
    ]
    return max(errors, default=0.0)
