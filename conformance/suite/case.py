"""A case: one problem handed to an adapter and to the reference.

Its own module, without Hypothesis, so that the report and the command line
can build cases without importing the suite's strategies.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backprop_conformance.reference.network import Network, Params

#: Weights are drawn in [-1, 1] and scaled per layer; 4 saturates sigmoid and tanh.
LAYER_SCALES = (0.25, 1.0, 4.0)
#: bce's output layer stays smaller, so most draws keep sigmoid(z_L) unsaturated.
BCE_OUTPUT_SCALES = (0.25, 0.5, 1.0)
#: Training draws smaller weights so that a few steps of gradient descent stay bounded.
TRAINING_SCALES = (0.25, 1.0)
#: Inputs x, and mse targets, lie in [-INPUT_BOUND, INPUT_BOUND].
INPUT_BOUND = 2.0


@dataclass
class Case:
    """One drawn problem: a network, params, a batch, and for training a schedule."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float = 0.1
    batches: list[np.ndarray] = field(default_factory=list)
