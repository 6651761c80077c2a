"""Saturated units and confident outputs: what the reference gets exactly, and what it does not.

The tests pin what holds far out on the sigmoid: no overflow, no log(0),
finite losses and gradients, and full relative accuracy where a naive formula
computes a small quantity as 1 minus something close to 1 (tanh' as 1 - t^2,
sigmoid' as s (1 - s), bce as softplus(z) - y z). Hypothesis found each of
those losing digits in an earlier reference; these tests keep them fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference import Network

ONE_WEIGHT_TANH_MSE = Network((1, 1), "tanh", "mse", bias=False)
ONE_WEIGHT_SIGMOID_MSE = Network((1, 1), "sigmoid", "mse", bias=False)
ONE_WEIGHT_SIGMOID_BCE = Network((1, 1), "sigmoid", "bce", bias=False)
X_ONE = np.array([[1.0]])  # z = w: the weight is the pre-activation


def _one_weight(z: float) -> list:
    return [(np.array([[z]]), None)]


def _only_gradient(network: Network, z: float, target: float) -> float:
    _, ((d_weight, _),) = reference.loss_and_gradients(network, _one_weight(z), X_ONE, np.array([[target]]))
    return float(d_weight[0, 0])


# --- what holds ---------------------------------------------------------------
# pyproject turns RuntimeWarnings from reference.* into errors, so each of
# these also proves that no overflow, division by zero or log(0) happened.


@pytest.mark.parametrize(("z", "target", "loss", "gradient"), [(800.0, 0.0, 800.0, 1.0), (-800.0, 1.0, 800.0, -1.0)])
def test_bce_of_an_extreme_logit_is_finite_and_exact(z, target, loss, gradient):
    value, ((d_weight, _),) = reference.loss_and_gradients(
        ONE_WEIGHT_SIGMOID_BCE, _one_weight(z), X_ONE, np.array([[target]])
    )
    # softplus(800) = 800 + log1p(exp(-800)) rounds to 800; sigmoid(800) - 0 rounds to 1.
    assert value == pytest.approx(loss, rel=1e-15, abs=0.0)
    assert float(d_weight[0, 0]) == pytest.approx(gradient, rel=1e-15, abs=0.0)


def test_sigmoid_of_an_extreme_logit_does_not_overflow():
    network = Network((1, 2), "sigmoid", "mse", bias=False)
    output = reference.forward(network, [(np.array([[800.0], [-800.0]]), None)], X_ONE)
    assert output[0, 0] == pytest.approx(1.0, rel=1e-15, abs=0.0)
    assert 0.0 <= output[0, 1] < 1e-300


def test_cross_entropy_of_logits_1000_apart_is_finite():
    network = Network((1, 2), "identity", "cross_entropy", bias=False)
    params = [(np.array([[1000.0], [0.0]]), None)]
    loss, ((d_weight, _),) = reference.loss_and_gradients(network, params, X_ONE, np.array([1]))
    assert loss == pytest.approx(1000.0, rel=1e-15, abs=0.0)
    np.testing.assert_allclose(d_weight, [[1.0], [-1.0]], rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("z", [6.75, 10.0, 15.0, 20.0])
def test_the_complex_step_keeps_every_digit_of_a_saturated_tanh(z):
    exact = 2.0 * math.tanh(z) / math.cosh(z) ** 2  # d/dw (tanh(w) - 0)^2 at w = z
    ((stepped, _),) = reference.complex_step_gradients(ONE_WEIGHT_TANH_MSE, _one_weight(z), X_ONE, np.array([[0.0]]))
    assert float(stepped[0, 0]) == pytest.approx(exact, rel=1e-14, abs=0.0)


@pytest.mark.parametrize("z", [5.0, 20.0, 30.0, 40.0])
def test_reference_and_complex_step_agree_on_a_saturated_bce_output_to_rounding(z):
    """Both are exact *absolutely* here, neither relatively: with y = 1, dJ/dz = a - y is a
    difference of nearly equal numbers in the reference, and the complex step's
    Im softplus(z + ih) - y h is one too. So the Hypothesis comparison (test_reference_oracles)
    judges such arrays against eps times |a| + |y|, not against 1e-12 relative."""
    eps = float(np.finfo(np.float64).eps)
    exact = -math.exp(-z) / (1.0 + math.exp(-z))
    y = np.array([[1.0]])
    ((stepped, _),) = reference.complex_step_gradients(ONE_WEIGHT_SIGMOID_BCE, _one_weight(z), X_ONE, y)
    reference_gradient = _only_gradient(ONE_WEIGHT_SIGMOID_BCE, z, 1.0)
    assert abs(reference_gradient - exact) <= 2.0 * eps  # |a| + |y| = 2
    assert abs(float(stepped[0, 0]) - exact) <= 2.0 * eps
    assert abs(reference_gradient - float(stepped[0, 0])) <= 4.0 * eps


# --- precision at saturation (found by Hypothesis; fixed in reference) ---------


@pytest.mark.parametrize("z", [6.75, 10.0, 15.0, 20.0])
def test_a_saturated_tanh_keeps_its_gradients_relative_accuracy(z):
    """1 - t**2 from t = tanh(z) rounded has relative error about eps * cosh(z)**2: 8e-12 at
    z = 6.75, 1e-8 at 10, 2e-4 at 15, and exactly 0 for |z| >= 19.1 where t rounds to +-1.
    1 / cosh(z)**2 is exact to rounding; it needs z, not only the stored a = tanh(z)."""
    exact = 2.0 * math.tanh(z) / math.cosh(z) ** 2
    assert _only_gradient(ONE_WEIGHT_TANH_MSE, z, 0.0) == pytest.approx(exact, rel=1e-13, abs=0.0)


@pytest.mark.parametrize("z", [20.0, 30.0, 40.0])
def test_a_saturated_sigmoid_keeps_its_gradients_relative_accuracy(z):
    """s (1 - s) from s = sigmoid(z) rounded has relative error about eps * exp(z) for z > 0:
    4e-8 at z = 20, 1e-3 at 30, and exactly 0 from z = 36.7, where s rounds to 1. Document
    000's own exp(-z) / (1 + exp(-z))**2, or sigmoid(z) * sigmoid(-z), is exact to rounding."""
    slope = math.exp(-z) / (1.0 + math.exp(-z)) ** 2  # document 000, Step 2
    exact = 2.0 * (1.0 / (1.0 + math.exp(-z))) * slope  # d/dw (sigmoid(w) - 0)^2 at w = z
    assert _only_gradient(ONE_WEIGHT_SIGMOID_MSE, z, 0.0) == pytest.approx(exact, rel=1e-13, abs=0.0)


@pytest.mark.parametrize("z", [30.0, 40.0])
def test_a_confident_correct_bce_output_keeps_its_relative_accuracy(z):
    """With y = 1, softplus(z) - y z and sigmoid(z) - y subtract nearly equal numbers: at z = 30
    the loss is 1.3% and the gradient 0.1% off, at z = 40 both are exactly 0. The same numbers
    as (1 - y) softplus(z) + y softplus(-z) and (1 - y) sigmoid(z) - y sigmoid(-z) do not cancel
    (for y in {0, 1}; soft targets near a cancel in any formula)."""
    exact_loss = math.log1p(math.exp(-z))  # -log sigmoid(z)
    exact_gradient = -math.exp(-z) / (1.0 + math.exp(-z))  # sigmoid(z) - 1 = -sigmoid(-z)
    loss, ((d_weight, _),) = reference.loss_and_gradients(
        ONE_WEIGHT_SIGMOID_BCE, _one_weight(z), X_ONE, np.array([[1.0]])
    )
    assert loss == pytest.approx(exact_loss, rel=1e-13, abs=0.0)
    assert float(d_weight[0, 0]) == pytest.approx(exact_gradient, rel=1e-13, abs=0.0)


def test_explain_of_a_saturated_bce_output_is_finite():
    """At z = 40, sigmoid(z) rounds to 1 and -(y/a - (1-y)/(1-a)) evaluates 0/0 even for y = 1,
    where the factor is -1/a = -1 exactly. Under this project's pytest config the NumPy
    RuntimeWarning is an error, so explain() raises; without it the sum of terms is nan."""
    with np.errstate(invalid="ignore", divide="ignore"):  # let the nan through to the assertion
        explanation = reference.explain(ONE_WEIGHT_SIGMOID_BCE, _one_weight(40.0), X_ONE, np.array([[1.0]]), "W1[0,0]")
    assert math.isfinite(explanation.backprop)
    assert all(math.isfinite(value) for _, value in explanation.terms[0].factors), explanation.render()
    assert math.isfinite(explanation.gradient)
