"""Document 000's errata (DESIGN.md, "The seeds' errata"): the reference follows the
correct math, and each test is named after the erratum it pins down."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference.backprop import _forward
from backprop_conformance.reference.seeds import example


def _sigmoid(h: float) -> float:
    return 1.0 / (1.0 + math.exp(-h))


def _documents_cost(output: float, target: float) -> float:
    """Document 000's J = Y* log(Y) + (1 - Y*) log(1 - Y), as printed (no minus sign)."""
    return target * math.log(output) + (1.0 - target) * math.log(1.0 - output)


def _shifted(params: reference.Params, grads: reference.Params, step: float) -> reference.Params:
    """Return theta + step * g for every parameter (biases are None in document 000)."""
    return [(weight + step * d_weight, None) for (weight, _), (d_weight, _) in zip(params, grads)]


@pytest.mark.parametrize("target", [1.0, 0.0, 0.3])
def test_erratum_bce_has_a_minus_sign(target):
    seed = example("000")
    y = np.array([[target]])
    output = float(reference.forward(seed.network, seed.params, seed.x)[0, 0])
    loss, grads = reference.loss_and_gradients(seed.network, seed.params, seed.x, y)

    documents_cost = _documents_cost(output, target)
    assert loss == pytest.approx(-documents_cost, rel=1e-14, abs=0.0)
    assert loss > 0.0 > documents_cost  # log of a probability is negative: the printed J is

    # Descent along -dJ/dtheta lowers the reference loss ...
    learning_rate = 0.1
    descended = reference.sgd_step(seed.network, seed.params, seed.x, y, learning_rate)
    assert reference.loss(seed.network, descended, seed.x, y) < loss
    # ... while the document's sign, theta - lr * d(printed J)/dtheta = theta + lr * dJ/dtheta,
    # climbs it: that is the erratum.
    climbed = _shifted(seed.params, grads, +learning_rate)
    assert reference.loss(seed.network, climbed, seed.x, y) > loss


def test_erratum_bce_has_a_minus_sign_in_step_1():
    """Step 1 prints dJ/dY = Y*/Y + (1-Y*)/(Y-1): the derivative of the printed J, so -dJ/dY."""
    seed = example("000")
    output, target = float(reference.forward(seed.network, seed.params, seed.x)[0, 0]), float(seed.y[0, 0])
    documents_step_1 = target / output + (1.0 - target) / (output - 1.0)
    (label, dJ_dY), *_ = reference.explain(seed.network, seed.params, seed.x, seed.y, seed.weight).terms[0].factors
    assert label == "dJ/da2[0]"
    assert dJ_dY == pytest.approx(-documents_step_1, rel=1e-14, abs=0.0)
    assert dJ_dY < 0.0  # with Y* = 1, raising Y lowers the loss


def test_erratum_hidden_activation_is_sigmoid_of_h1_not_h2():
    """000 prints a1i = 1/(1+exp(-h2i)); the hidden node is sigmoid(h1i), h1i = sum theta1(i,k) x_k."""
    seed = example("000")
    theta1, theta2, x = seed.params[0][0], seed.params[1][0][0], seed.x[0]
    h1 = [float(theta1[j] @ x) for j in range(3)]
    a1 = [_sigmoid(h) for h in h1]
    h2 = float(theta2 @ np.array(a1))

    zs, activations = _forward(seed.network, seed.params, seed.x)
    np.testing.assert_allclose(zs[0][0], h1, rtol=1e-15)
    np.testing.assert_allclose(activations[1][0], a1, rtol=1e-15)
    assert zs[1][0, 0] == pytest.approx(h2, rel=1e-15, abs=0.0)
    assert all(abs(a - _sigmoid(h2)) > 1e-3 for a in a1), "the erratum's sigmoid(h2) is far from every a1i"

    # The public output is sigmoid(sum theta2i sigmoid(h1i)); with sigmoid(h2) in place of
    # every a1i it would be another number.
    output = float(reference.forward(seed.network, seed.params, seed.x)[0, 0])
    assert output == pytest.approx(_sigmoid(h2), rel=1e-15, abs=0.0)
    erratum_output = _sigmoid(float(theta2.sum()) * _sigmoid(h2))
    assert abs(output - erratum_output) > 1e-3

    # Step 4's factor da1i/dh1 is the slope at h1i, not at h2.
    for j in range(3):
        factors = dict(reference.explain(seed.network, seed.params, seed.x, seed.y, f"W1[{j},0]").terms[0].factors)
        slope = factors[f"da1[{j}]/dz1[{j}]"]
        assert slope == pytest.approx(math.exp(-h1[j]) / (1.0 + math.exp(-h1[j])) ** 2, rel=1e-14, abs=0.0)
        assert abs(slope - math.exp(-h2) / (1.0 + math.exp(-h2)) ** 2) > 1e-4


def test_erratum_update_subtracts_from_the_same_weight():
    """000 prints theta1i = theta1 - alpha dJ/dtheta1i; it is theta1i = theta1i - alpha dJ/dtheta1i."""
    seed = example("000")
    _, grads = reference.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    updated = reference.sgd_step(seed.network, seed.params, seed.x, seed.y, seed.learning_rate)
    for layer, ((old, _), (d_old, _), (new, new_bias)) in enumerate(zip(seed.params, grads, updated), start=1):
        assert new_bias is None
        assert new.shape == old.shape
        for position in np.ndindex(old.shape):
            expected = old[position] - seed.learning_rate * d_old[position]
            assert new[position] == pytest.approx(expected, rel=1e-15, abs=0.0), f"W{layer}{list(position)}"
            # The printed rule read literally: every entry from one weight, theta1 = W1[0, 0].
            misread = old[(0, 0)] - seed.learning_rate * d_old[position]
            if position != (0, 0):
                assert abs(new[position] - misread) > 1e-3, f"W{layer}{list(position)}"
