"""The reference's own edges: overflow is an error naming the step and the array; odd input a named error."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference.overflow import ReferenceOverflow

LINEAR = reference.Network((1, 1), ("identity",), "mse")
TWO_LAYERS = reference.Network((2, 3, 1), ("tanh", "identity"), "mse")


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """No RuntimeWarning may escape: the error replaces it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("function", ["loss", "loss_and_gradients"])
def test_a_huge_weight_names_the_pre_activation_that_overflows(function):
    with pytest.raises(ReferenceOverflow, match=rf"^{function}: float64 overflows: z1\[0, 0\] = inf in the forward"):
        getattr(reference, function)(LINEAR, [(np.array([[1e308]]), np.array([0.0]))], [[10.0]], [[1.0]])


def test_forward_names_the_array_too():
    with pytest.raises(ReferenceOverflow, match=r"^forward: float64 overflows: z1\[0, 0\] = inf"):
        reference.forward(LINEAR, [(np.array([[1e308]]), np.array([0.0]))], [[10.0]])


def test_a_loss_that_overflows_is_named():
    params = [(np.array([[1e160]]), np.array([0.0]))]
    with pytest.raises(ReferenceOverflow, match=r"the loss J = inf"):
        reference.loss(LINEAR, params, [[1.0]], [[0.0]])


def test_a_gradient_that_overflows_in_the_backward_pass_is_named():
    # The forward pass and J stay finite (z1 ~ 2e-300, z2 ~ 6, J ~ 1e20, dW2 ~ 4e-290), but
    # delta1 = delta2 W2 ~ 2e10 * 1e300 overflows.
    params = [(np.full((3, 2), 1e-300), np.zeros(3)), (np.full((1, 3), 1e300), np.zeros(1))]
    x, y = np.array([[1.0, 1.0]]), np.array([[-1e10]])
    with pytest.raises(ReferenceOverflow, match=r"loss_and_gradients: float64 overflows: delta1\[0, \d\] = -?inf"):
        reference.loss_and_gradients(TWO_LAYERS, params, x, y)


def test_a_huge_learning_rate_names_the_update_in_sgd_step():
    params = reference.init_params(LINEAR, seed=0)
    with pytest.raises(ReferenceOverflow, match=r"^sgd_step: the update W1 - learning_rate \* dW1 is not finite"):
        reference.sgd_step(LINEAR, params, [[1.0]], [[1.0]], 1e308)


def test_a_huge_learning_rate_names_the_step_in_train():
    params = reference.init_params(LINEAR, seed=0)
    batches = [np.array([0])] * 3
    with pytest.raises(ReferenceOverflow, match=r"^train: step 2 of 3 \(1 samples\): float64 overflows: the loss J"):
        reference.train(LINEAR, params, [[1.0]], [[1.0]], batches, 1e300)


def test_object_dtype_labels_get_a_named_type_error():
    network = reference.Network((1, 2), ("identity",), "cross_entropy")
    params = reference.init_params(network, seed=0)
    with pytest.raises(TypeError, match=r"y must hold integer class labels .* dtype object .*astype\(int\)"):
        reference.loss(network, params, [[1.0], [2.0]], np.array([1, 0], dtype=object))


def test_a_learning_rate_beyond_float64_is_a_value_error():
    with pytest.raises(ValueError, match=r"learning_rate=1000.* is too large for float64"):
        reference.sgd_step(LINEAR, reference.init_params(LINEAR, seed=0), [[1.0]], [[1.0]], 10**400)


@pytest.mark.parametrize("activations", [None, 3, [None]])
def test_activations_that_are_not_names_are_refused_naming_the_field(activations):
    with pytest.raises((TypeError, ValueError), match=r"^activations"):
        reference.Network((1, 1), activations, "mse")


@pytest.mark.parametrize("seed", [True, 1.5, "0", -1])
def test_init_params_refuses_a_seed_that_is_not_a_non_negative_integer(seed):
    with pytest.raises((TypeError, ValueError), match=r"^seed="):
        reference.init_params(LINEAR, seed=seed)


@pytest.mark.parametrize("value", [[[np.complex128(1 + 2j)]], [[1 + 0j]], np.array([[1 + 2j]], dtype=object)])
def test_complex_numbers_are_refused_not_made_real(value):
    with pytest.raises(TypeError, match=r"^W1 (is complex|holds complex|is not a numeric array)"):
        reference.loss(LINEAR, [(value, [0.0])], [[1.0]], [[1.0]])


def test_numeric_strings_are_refused():
    with pytest.raises(TypeError, match=r"^x is not a numeric array: it holds <U3 values"):
        reference.loss(LINEAR, [([[1.0]], [0.0])], [["1.5"]], [[1.0]])
