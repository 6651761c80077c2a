"""The three documents' networks as ready examples.

``000``  a 2-3-1 sigmoid network without biases, binary cross-entropy,
         gradient descent (document 000, with its errata corrected).
``001``  a 4-2-2-1 network with (n_out, n_in) weights and biases, sigmoid
         layers and the MSE cost (document 001).
``002``  an L-layer sigmoid network trained in mini-batches over epochs
         (document 002): 50 samples at batch size 16 make ceil(50/16) = 4
         iterations per epoch, the last of 2 samples; 3 shuffled epochs.

Each call builds fresh arrays, so callers may modify what they get.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backprop_conformance.reference.explain import Explanation, explain
from backprop_conformance.reference.network import Network, Params, init_params
from backprop_conformance.reference.training import batch_schedule

__all__ = ["EXAMPLES", "Example", "Explanation", "example", "explain"]


@dataclass(frozen=True)
class Example:
    """A document's network with fixed params, data, learning rate and schedule."""

    key: str
    title: str
    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float
    batches: list[np.ndarray]
    weight: str  # the weight the document traces, for explain()


def _example_000() -> Example:
    # theta1(j, i) connects input x_i to hidden node j: W1 has shape (3, 2).
    theta1 = np.array([[0.15, -0.25], [0.40, 0.10], [-0.30, 0.35]])
    theta2 = np.array([[0.50, -0.60, 0.45]])
    return Example(
        key="000",
        title="2-3-1 sigmoid network without biases, binary cross-entropy",
        network=Network((2, 3, 1), ("sigmoid", "sigmoid"), "bce", bias=False),
        params=[(theta1, None), (theta2, None)],
        x=np.array([[0.8, -0.4]]),
        y=np.array([[1.0]]),
        learning_rate=0.5,
        batches=batch_schedule(1, 1, epochs=5),
        weight="W1[0,1]",
    )


def _example_001() -> Example:
    network = Network((4, 2, 2, 1), ("sigmoid", "sigmoid", "sigmoid"), "mse")
    return Example(
        key="001",
        title="4-2-2-1 network with biases, sigmoid layers, MSE cost",
        network=network,
        params=init_params(network, seed=1),
        x=np.array([[0.5, -1.0, 0.25, 2.0], [1.5, 0.3, -0.7, 0.1]]),
        y=np.array([[1.0], [0.0]]),
        learning_rate=0.1,
        batches=batch_schedule(2, 2, epochs=5),
        # document 001 traces (w_22)^2, which joins (a_2)^2 to (z_2)^3: W2[1,1] here.
        weight="W2[1,1]",
    )


def _example_002() -> Example:
    network = Network((2, 4, 4, 1), "sigmoid", "bce")
    rng = np.random.default_rng(2002)
    x = rng.normal(size=(50, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(np.float64)  # XOR of the signs
    return Example(
        key="002",
        title="L-layer sigmoid network, mini-batches of 16 over 3 shuffled epochs",
        network=network,
        params=init_params(network, seed=2),
        x=x,
        y=y,
        learning_rate=1.0,
        batches=batch_schedule(50, 16, epochs=3, seed=2),
        weight="W3[0,1]",
    )


EXAMPLES = {"000": _example_000, "001": _example_001, "002": _example_002}


def example(key: str) -> Example:
    """Return a fresh copy of document ``key``'s example (``"000"``, ``"001"``, ``"002"``)."""
    if key not in EXAMPLES:
        raise ValueError(f"network={key!r} is not one of {', '.join(EXAMPLES)}")
    return EXAMPLES[key]()
