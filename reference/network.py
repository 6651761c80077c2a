"""The network spec: sizes, activations, loss, bias and reduction, validated once."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from backprop_conformance.reference.conventions import (
    ACTIVATIONS,
    LOSSES,
    PARAMETERS,
    REDUCTIONS,
    REQUIRED_OUTPUT_ACTIVATION,
)
from backprop_conformance.reference.specs import base, canonical, parse

Params = list[tuple[np.ndarray, "np.ndarray | None"]]


@dataclass(frozen=True)
class Network:
    """An immutable multi-layer perceptron spec.

    ``Network((2, 3, 1), ("sigmoid", "sigmoid"), "bce", bias=False)`` is
    document 000's network. ``activations`` may be one name for every layer.
    Names may carry parameters (``reference.specs``): ``"leaky_relu(0.2)"``,
    ``"huber(delta=0.5)"``; they are kept in canonical form
    (``"leaky_relu(negative_slope=0.2)"``), and a parameter at its default
    is dropped (``"elu(alpha=1)"`` is ``"elu"``).
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    bias: bool = True
    reduction: str = "mean"

    def __post_init__(self) -> None:
        sizes = _validated_sizes(self.sizes)
        activations = _validated_activations(self.activations, len(sizes) - 1)
        loss_name, loss_values = parse(self.loss, PARAMETERS, "loss")
        if loss_name not in LOSSES:
            raise ValueError(f"loss={self.loss!r} is not one of {', '.join(LOSSES)}")
        if loss_name == "huber" and not loss_values["delta"] > 0:
            raise ValueError(f"loss={self.loss!r}: delta must be > 0")
        if loss_name == "cross_entropy" and not 0 <= loss_values["label_smoothing"] <= 1:
            raise ValueError(f"loss={self.loss!r}: label_smoothing must be in [0, 1]")
        loss = canonical(loss_name, loss_values, PARAMETERS)
        if self.reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction={self.reduction!r} is not one of {', '.join(REDUCTIONS)}"
            )
        if not isinstance(self.bias, (bool, np.bool_)):
            raise TypeError(f"bias={self.bias!r} must be True or False")
        required = REQUIRED_OUTPUT_ACTIVATION[loss_name]
        if required is not None and base(activations[-1]) != required:
            raise ValueError(
                f"loss={self.loss!r} needs a {required} output layer, "
                f"got activations[{len(activations) - 1}]={activations[-1]!r}"
            )
        if loss_name == "cross_entropy" and sizes[-1] < 2:
            raise ValueError(
                f"loss='cross_entropy' needs at least 2 classes, got sizes[-1]={sizes[-1]}"
            )
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "loss", loss)
        object.__setattr__(self, "bias", bool(self.bias))

    @property
    def loss_name(self) -> str:
        """Return the loss without its parameters: ``"huber"`` for ``"huber(delta=0.5)"``."""
        return base(self.loss)

    @property
    def activation_names(self) -> tuple[str, ...]:
        """Return each layer's activation without its parameters."""
        return tuple(base(name) for name in self.activations)

    @property
    def depth(self) -> int:
        """Return L, the number of layers with weights."""
        return len(self.sizes) - 1

    def describe(self) -> str:
        """Return the network in one line: ``3-4-1 sigmoid/identity mse mean, bias``."""
        return (
            f"{'-'.join(map(str, self.sizes))} {'/'.join(self.activations)} "
            f"{self.loss} {self.reduction}, {'bias' if self.bias else 'no bias'}"
        )

    def to_json(self) -> dict:
        """Return the network as JSON-ready data: ``{"sizes", "activations", "loss", "bias", "reduction"}``."""
        return {"sizes": list(self.sizes), "activations": list(self.activations), "loss": self.loss,
                "bias": self.bias, "reduction": self.reduction}

    def __repr__(self) -> str:
        return (
            f"Network(sizes={self.sizes!r}, activations={self.activations!r}, "
            f"loss={self.loss!r}, bias={self.bias!r}, reduction={self.reduction!r})"
        )


def _validated_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes={sizes!r} must be a sequence of layer widths")
    if len(sizes) < 2:
        raise ValueError(f"sizes={tuple(sizes)!r} needs an input and an output width")
    for index, width in enumerate(sizes):
        if isinstance(width, (bool, np.bool_)) or not isinstance(width, numbers.Integral):
            raise TypeError(f"sizes[{index}]={width!r} must be an integer")
        if width < 1:
            raise ValueError(f"sizes[{index}]={width} is below 1: every width must be >= 1")
    return tuple(int(width) for width in sizes)


def _validated_activations(activations: Sequence[str] | str, depth: int) -> tuple[str, ...]:
    if isinstance(activations, str):
        activations = (activations,) * depth
    if not isinstance(activations, Sequence):
        raise TypeError(
            f"activations={activations!r:.60} must be an activation name or a sequence of names, one per layer"
        )
    activations = tuple(activations)
    if len(activations) != depth:
        raise ValueError(
            f"activations has {len(activations)} entries, the network has {depth} layers"
        )
    canonical_names = []
    for index, name in enumerate(activations):
        if not isinstance(name, str):
            raise ValueError(f"activations[{index}]={name!r} is not one of {', '.join(ACTIVATIONS)}")
        parsed, values = parse(name, PARAMETERS, f"activations[{index}]")
        if parsed not in ACTIVATIONS:
            raise ValueError(f"activations[{index}]={name!r} is not one of {', '.join(ACTIVATIONS)}")
        if parsed == "elu" and not values["alpha"] > 0:
            raise ValueError(f"activations[{index}]={name!r}: alpha must be > 0")
        canonical_names.append(canonical(parsed, values, PARAMETERS))
    return tuple(canonical_names)


def params_json(params: Params) -> list:
    """Return ``[[W, b], ...]`` as nested lists, ``b`` null without biases: params as JSON data."""
    return [[np.asarray(w).tolist(), None if b is None else np.asarray(b).tolist()] for w, b in params]


def init_params(network: Network, seed: int | None = None) -> Params:
    """Return fresh float64 params, one ``(W, b)`` pair per layer.

    ``W`` and ``b`` are uniform on ``[-1/sqrt(n_in), 1/sqrt(n_in)]``, the bound
    ``torch.nn.Linear`` uses; ``b`` is None when the network has no biases.
    ``seed`` is None (fresh entropy) or an integer >= 0.
    """
    if not isinstance(network, Network):
        raise TypeError(f"network={network!r:.60} must be a reference.Network")
    if seed is not None and (isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed={seed!r:.60} must be None or an integer >= 0")
    if seed is not None and seed < 0:
        raise ValueError(f"seed={seed} must be >= 0")
    rng = np.random.default_rng(seed)
    params: Params = []
    for n_in, n_out in zip(network.sizes[:-1], network.sizes[1:]):
        bound = 1.0 / np.sqrt(n_in)
        weight = rng.uniform(-bound, bound, size=(n_out, n_in))
        bias = rng.uniform(-bound, bound, size=n_out) if network.bias else None
        params.append((weight, bias))
    return params
