"""Trace one weight's gradient as products of chain-rule factors, with numbers.

Document 000 derives dJ/dtheta1 as one product,

    dJ/dY * dY/dh2 * dh2/da1i * da1i/dh1 * dh1/dtheta1(j,i),

because its network has one output. With wider layers a weight reaches the
loss along several paths (one per choice of unit in every later layer), and
the gradient is the sum of one such product per path and per sample. This
module lists every product, factor by factor, and their sum, which must
equal the layer-wise backward pass.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS, sigmoid
from backprop_conformance.reference.backprop import _forward, _loss_and_gradients
from backprop_conformance.reference.conventions import PARAMETERS
from backprop_conformance.reference.losses import bce_probability_gradient, log_softmax, normaliser, smoothed_targets
from backprop_conformance.reference.network import Network
from backprop_conformance.reference.specs import parse
from backprop_conformance.reference.validation import check_data, check_params

_WEIGHT = re.compile(r"^\s*([Wb])(\d+)\s*\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]\s*$")
MAX_TERMS = 4096


@dataclass(frozen=True)
class ChainTerm:
    """One sample's product of factors along one path from the weight to J."""

    sample: int
    factors: tuple[tuple[str, float], ...]

    @property
    def product(self) -> float:
        """Return the product of the factors."""
        return float(np.prod([value for _, value in self.factors]))


@dataclass(frozen=True)
class Explanation:
    """The chain-rule terms of dJ/d(weight), their sum and the backprop value."""

    weight: str
    network: Network
    terms: tuple[ChainTerm, ...]
    backprop: float

    @property
    def gradient(self) -> float:
        """Return the sum of every term's product: dJ/d(weight) by the chain rule."""
        return float(sum(term.product for term in self.terms))

    def render(self, max_terms: int = 8) -> str:
        """Return the trace as text, showing at most ``max_terms`` terms in full."""
        lines = [f"dJ/d{self.weight} in network {self.network.describe()}"]
        for term in self.terms[:max_terms]:
            lines.append(f"  sample {term.sample}:")
            width = max(len(label) for label, _ in term.factors)
            for label, value in term.factors:
                lines.append(f"    {label:<{width}} = {value: .12e}")
            lines.append(f"    {'product':<{width}} = {term.product: .12e}")
        if len(self.terms) > max_terms:
            lines.append(f"  ... {len(self.terms) - max_terms} more terms")
        lines.append(f"  {f'sum of {len(self.terms)} term(s)':<24} = {self.gradient: .15e}")
        lines.append(f"  {'layer-wise backprop':<24} = {self.backprop: .15e}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def parse_weight(network: Network, weight: str) -> tuple[str, int, tuple[int, ...]]:
    """Return (kind, layer, index) for a name like ``"W1[0,1]"`` or ``"b2[0]"``."""
    match = _WEIGHT.match(weight) if isinstance(weight, str) else None
    if match is None:
        raise ValueError(f"weight={weight!r} is not of the form 'W1[0,1]' or 'b1[0]'")
    kind, layer = match.group(1), int(match.group(2))
    index = tuple(int(group) for group in match.groups()[2:] if group is not None)
    if not 1 <= layer <= network.depth:
        raise ValueError(f"weight={weight!r}: layer {layer} is not in 1..{network.depth}")
    shape = (network.sizes[layer], network.sizes[layer - 1]) if kind == "W" else (network.sizes[layer],)
    if kind == "b" and not network.bias:
        raise ValueError(f"weight={weight!r}: the network has no biases")
    if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
        raise ValueError(f"weight={weight!r}: index {list(index)} is outside {kind}{layer}'s shape {shape}")
    return kind, layer, index


def explain(network: Network, params: Any, x: Any, y: Any, weight: str = "W1[0,0]") -> Explanation:
    """Return the chain-rule trace of dJ/d(weight), e.g. ``weight="W1[0,1]"``.

    Factors run from the loss down to the weight, as in document 000:
    dJ/da_L, da_L/dz_L, dz_L/da_{L-1}, ..., da_l/dz_l, dz_l/dW_l[j,k].
    """
    params = check_params(network, params)
    x, y = check_data(network, x, y)
    kind, layer, index = parse_weight(network, weight)
    zs, activations = _forward(network, params, x)
    m, depth = x.shape[0], network.depth
    n = normaliser(network.loss, network.reduction, m, network.sizes[-1])
    output = activations[-1]
    loss_name, loss_parameters = parse(network.loss, PARAMETERS, "loss")
    if loss_name == "mse":
        d_output = 2.0 * (output - y) / n
    elif loss_name == "huber":  # dh/da = clip(a - y, -delta, delta)
        d_output = np.clip(output - y, -loss_parameters["delta"], loss_parameters["delta"]) / n
    elif loss_name == "bce":
        d_output = bce_probability_gradient(zs[-1], y) / n
    elif loss_name == "bce_with_logits":  # on the logits: a_L = z_L, dJ/dz_L = sigmoid(z) - y
        d_output = (sigmoid(output) - y) / n
    else:  # cross_entropy: the output layer is the identity, a_L = z_L
        targets = smoothed_targets(y, output.shape[1], loss_parameters["label_smoothing"])
        d_output = (np.exp(log_softmax(output)) - targets) / n

    unit = index[0]
    later_units = [range(network.sizes[t]) for t in range(layer + 1, depth + 1)]
    n_terms = m * int(np.prod([len(units) for units in later_units]))
    if n_terms > MAX_TERMS:
        raise ValueError(
            f"weight={weight!r} has {n_terms} chain-rule terms (samples x paths), "
            f"more than {MAX_TERMS}; explain a smaller batch or a later layer"
        )
    terms = []
    for s in range(m):
        for path in itertools.product(*later_units):
            units = (unit, *path)  # units[t] is the unit used in layer layer + t
            factors = [(f"dJ/da{depth}[{units[-1]}]", float(d_output[s, units[-1]]))]
            for t in reversed(range(len(units))):
                current = layer + t
                derivative = ACTIVATION_FUNCTIONS[network.activations[current - 1]].derivative
                factors.append((
                    f"da{current}[{units[t]}]/dz{current}[{units[t]}]",
                    float(derivative(zs[current - 1][s, units[t]])),
                ))
                if t > 0:
                    factors.append((
                        f"dz{current}[{units[t]}]/da{current - 1}[{units[t - 1]}]",
                        float(params[current - 1][0][units[t], units[t - 1]]),
                    ))
            local = float(activations[layer - 1][s, index[1]]) if kind == "W" else 1.0
            factors.append((f"dz{layer}[{unit}]/d{weight.strip()}", local))
            terms.append(ChainTerm(sample=s, factors=tuple(factors)))

    _, grads = _loss_and_gradients(network, params, x, y)
    backprop = float(grads[layer - 1][0 if kind == "W" else 1][index])
    return Explanation(weight=weight.strip(), network=network, terms=tuple(terms), backprop=backprop)
