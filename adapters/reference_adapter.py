"""The reference behind the adapter protocol, so it can be checked like any other."""

from __future__ import annotations

import numpy as np

from backprop_conformance import reference
from backprop_conformance.reference.network import Network, Params


class ReferenceAdapter:
    """``reference`` itself: float64, every optional method provided."""

    name = "reference"
    dtype = "float64"

    def forward(self, network: Network, params: Params, x: np.ndarray) -> np.ndarray:
        """Return the reference's forward pass."""
        return reference.forward(network, params, x)

    def loss_and_gradients(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray
    ) -> tuple[float, Params]:
        """Return the reference's loss and gradients."""
        return reference.loss_and_gradients(network, params, x, y)

    def sgd_step(
        self, network: Network, params: Params, x: np.ndarray, y: np.ndarray, learning_rate: float
    ) -> Params:
        """Return the reference's gradient-descent step."""
        return reference.sgd_step(network, params, x, y, learning_rate)

    def train(
        self,
        network: Network,
        params: Params,
        x: np.ndarray,
        y: np.ndarray,
        batches: list[np.ndarray],
        learning_rate: float,
    ) -> reference.Trajectory:
        """Return the reference's training trajectory."""
        return reference.train(network, params, x, y, batches, learning_rate)
