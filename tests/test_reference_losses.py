"""Each loss's formula and reduction, recomputed by hand (reference.conventions states them).

The oracles cannot catch a wrong normaliser: they differentiate the
reference's own J. These tests pin J itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference import Network

X = np.array([[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]])  # m = 3 samples


def _outputs(network: Network, params: reference.Params) -> np.ndarray:
    return reference.forward(network, params, X)


@pytest.mark.parametrize(("reduction", "normaliser"), [("mean", 3 * 2), ("sum", 1)])
def test_mse_is_the_sum_of_squared_errors_over_m_times_n_outputs(reduction, normaliser):
    network = Network((2, 3, 2), ("tanh", "identity"), "mse", reduction=reduction)
    params = reference.init_params(network, seed=1)
    y = np.array([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.1]])
    outputs = _outputs(network, params)
    by_hand = sum((outputs[s, j] - y[s, j]) ** 2 for s in range(3) for j in range(2)) / normaliser
    assert reference.loss(network, params, X, y) == pytest.approx(by_hand, rel=1e-14, abs=0.0)


@pytest.mark.parametrize(("reduction", "normaliser"), [("mean", 3 * 2), ("sum", 1)])
def test_bce_is_minus_the_log_likelihood_over_m_times_n_outputs(reduction, normaliser):
    network = Network((2, 3, 2), ("relu", "sigmoid"), "bce", reduction=reduction)
    params = reference.init_params(network, seed=2)
    y = np.array([[1.0, 0.0], [0.25, 1.0], [0.0, 0.5]])
    outputs = _outputs(network, params)
    by_hand = (
        -sum(
            y[s, j] * math.log(outputs[s, j]) + (1.0 - y[s, j]) * math.log(1.0 - outputs[s, j])
            for s in range(3)
            for j in range(2)
        )
        / normaliser
    )
    assert reference.loss(network, params, X, y) == pytest.approx(by_hand, rel=1e-14, abs=0.0)


@pytest.mark.parametrize(("reduction", "normaliser"), [("mean", 3), ("sum", 1)])
def test_cross_entropy_is_minus_the_log_softmax_of_the_label_over_m(reduction, normaliser):
    network = Network((2, 4, 3), ("sigmoid", "identity"), "cross_entropy", reduction=reduction)
    params = reference.init_params(network, seed=3)
    labels = np.array([2, 0, 1])
    logits = _outputs(network, params)
    by_hand = sum(math.log(sum(math.exp(v) for v in logits[s])) - logits[s, labels[s]] for s in range(3)) / normaliser
    assert reference.loss(network, params, X, labels) == pytest.approx(by_hand, rel=1e-14, abs=0.0)


def test_cross_entropy_output_is_the_logits_and_its_gradient_is_softmax_minus_one_hot():
    network = Network((2, 3), "identity", "cross_entropy", bias=False, reduction="sum")
    weight = np.array([[0.5, -0.25], [1.0, 0.75], [-1.5, 0.5]])
    labels = np.array([2, 0, 1])
    logits = X @ weight.T
    np.testing.assert_allclose(reference.forward(network, [(weight, None)], X), logits, rtol=1e-15, atol=0.0)
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    error = softmax - np.eye(3)[labels]
    _, ((d_weight, _),) = reference.loss_and_gradients(network, [(weight, None)], X, labels)
    np.testing.assert_allclose(d_weight, error.T @ X, rtol=1e-13, atol=0.0)


def test_mse_gradient_of_a_one_layer_linear_network_is_the_normal_equations_residual():
    network = Network((2, 2), "identity", "mse", reduction="mean")
    weight, bias = np.array([[0.5, -0.25], [1.0, 0.75]]), np.array([0.1, -0.2])
    y = np.array([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.1]])
    residual = X @ weight.T + bias - y
    _, ((d_weight, d_bias),) = reference.loss_and_gradients(network, [(weight, bias)], X, y)
    np.testing.assert_allclose(d_weight, 2.0 * residual.T @ X / 6, rtol=1e-14, atol=0.0)
    np.testing.assert_allclose(d_bias, 2.0 * residual.sum(axis=0) / 6, rtol=1e-14, atol=0.0)
