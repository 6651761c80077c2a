"""A case: one problem handed to an adapter and to the reference.

Its own module, without Hypothesis, so that the report and the command line
can build cases without importing the suite's strategies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from backprop_conformance.reference.conventions import ACTIVATIONS, LOSSES
from backprop_conformance.reference.network import Network, Params, params_json
from backprop_conformance.reference.optimizers import Optimizer

#: Weights are drawn in [-1, 1] and scaled per layer; 4 saturates sigmoid and tanh.
LAYER_SCALES = (0.25, 1.0, 4.0)
#: bce's output layer stays smaller, so most draws keep sigmoid(z_L) unsaturated.
BCE_OUTPUT_SCALES = (0.25, 0.5, 1.0)
#: Training draws smaller weights so that a few steps of gradient descent stay bounded.
TRAINING_SCALES = (0.25, 1.0)
#: Inputs x, and mse targets, lie in [-INPUT_BOUND, INPUT_BOUND].
INPUT_BOUND = 2.0
#: The names drawn (by the strategies and the report): every activation and loss at its defaults (torch's),
#: and those with parameters once more with one changed.
ACTIVATION_SPECS = (*ACTIVATIONS, "leaky_relu(negative_slope=0.2)", "elu(alpha=0.5)")
LOSS_SPECS = (*LOSSES, "huber(delta=0.5)", "cross_entropy(label_smoothing=0.1)")


@dataclass
class Case:
    """One drawn problem: a network, params, a batch, and for training a schedule."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float = 0.1
    batches: list[np.ndarray] = field(default_factory=list)
    #: The document this case is (``"000"``, ...), None for a drawn case: repros then rebuild it from the seeds.
    source: str | None = None
    #: The optimizer ``train`` runs (its ``lr`` is ``learning_rate``); None: plain gradient descent.
    optimizer: Optimizer | None = None

    def __repr__(self) -> str:
        """Return the case in one line, without its arrays (``to_json`` and the repro snippet have them)."""
        schedule = f", {len(self.batches)} batches" if self.batches else ""
        schedule += f", {self.optimizer.describe()}" if self.optimizer is not None else ""
        document = f"document {self.source}: " if self.source else ""
        return (
            f"Case({document}{self.network.describe()}; {self.x.shape[0]} samples, learning rate "
            f"{self.learning_rate:.6g}{schedule})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis's (and IPython's) pretty printer shows the one-line repr, not every array."""
        printer.text(repr(self))

    def to_json(self) -> dict[str, Any]:
        """Return the case as JSON-ready data: the network spec, params as nested lists, data, schedule."""
        return {
            "network": network_json(self.network),
            "params": params_json(self.params),
            "x": self.x.tolist(),
            "y": self.y.tolist(),
            "learning_rate": self.learning_rate,
            "batches": [batch.tolist() for batch in self.batches],
            "source": self.source,
            **({} if self.optimizer is None else {"optimizer": self.optimizer.to_json()}),
        }


def network_json(network: Network) -> dict[str, Any]:
    """Return a network spec as JSON-ready data: sizes, activations, loss, bias, reduction."""
    return network.to_json()
