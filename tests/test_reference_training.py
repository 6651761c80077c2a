"""sgd_step and train: the update rule, the loss each iteration records, and float64 results."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference.seeds import example
from tests.strategies_reference import ALL_ACTIVATIONS, draw_problem


def _assert_params_close(actual: reference.Params, expected: reference.Params, rtol: float) -> None:
    __tracebackhide__ = True
    assert len(actual) == len(expected)
    for layer, ((weight, bias), (wanted_weight, wanted_bias)) in enumerate(zip(actual, expected), start=1):
        np.testing.assert_allclose(weight, wanted_weight, rtol=rtol, atol=0.0, err_msg=f"W{layer}")
        if wanted_bias is None:
            assert bias is None, f"b{layer} should stay None"
        else:
            np.testing.assert_allclose(bias, wanted_bias, rtol=rtol, atol=0.0, err_msg=f"b{layer}")


@pytest.mark.parametrize("key", ["000", "001", "002"])
def test_train_records_each_iterations_loss_before_its_update(key):
    seed = example(key)
    trajectory = reference.train(seed.network, seed.params, seed.x, seed.y, seed.batches, seed.learning_rate)
    assert trajectory.losses.shape == (len(seed.batches),)
    assert trajectory.losses.dtype == np.float64

    params = seed.params
    for iteration, batch in enumerate(seed.batches):
        x, y = seed.x[batch], seed.y[batch]
        before = reference.loss(seed.network, params, x, y)
        updated = reference.sgd_step(seed.network, params, x, y, seed.learning_rate)
        after = reference.loss(seed.network, updated, x, y)
        # Same arithmetic on the same arrays: equal up to nothing, checked with a hair of slack.
        assert trajectory.losses[iteration] == pytest.approx(before, rel=1e-15, abs=0.0), f"iteration {iteration}"
        assert abs(before - after) > 1e-9 * abs(before), "the step must move the loss, or the test proves nothing"
        assert trajectory.losses[iteration] != pytest.approx(after, rel=1e-12, abs=0.0), f"iteration {iteration}"
        params = updated
    _assert_params_close(trajectory.params, params, rtol=1e-15)


def test_training_document_000s_network_lowers_its_loss_every_step():
    seed = example("000")
    losses = reference.train(seed.network, seed.params, seed.x, seed.y, seed.batches, seed.learning_rate).losses
    assert len(losses) == 5
    assert np.all(np.diff(losses) < 0.0), losses


def test_train_uses_the_samples_each_batch_names():
    seed = example("001")
    only_second = reference.train(seed.network, seed.params, seed.x, seed.y, [np.array([1])], 0.1)
    on_its_own = reference.train(seed.network, seed.params, seed.x[1:], seed.y[1:], [np.array([0])], 0.1)
    assert only_second.losses[0] == pytest.approx(on_its_own.losses[0], rel=1e-15, abs=0.0)
    _assert_params_close(only_second.params, on_its_own.params, rtol=1e-15)


def test_sgd_step_is_theta_minus_learning_rate_times_gradient_for_weights_and_biases():
    seed = example("001")
    _, grads = reference.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    updated = reference.sgd_step(seed.network, seed.params, seed.x, seed.y, 0.3)
    expected = [(w - 0.3 * dw, b - 0.3 * db) for (w, b), (dw, db) in zip(seed.params, grads)]
    _assert_params_close(updated, expected, rtol=1e-15)


def test_sgd_step_returns_new_arrays_and_leaves_its_inputs_untouched():
    seed = example("001")
    params = [[weight, bias] for weight, bias in seed.params]  # mutable pairs: replacement would show
    originals = [(weight.copy(), bias.copy()) for weight, bias in seed.params]
    x, y = seed.x.copy(), seed.y.copy()
    updated = reference.sgd_step(seed.network, params, seed.x, seed.y, 0.5)
    for (weight, bias), (new_weight, new_bias), pair, (old_weight, old_bias) in zip(
        seed.params, updated, params, originals
    ):
        assert pair[0] is weight and pair[1] is bias
        # Non-mutation is an exact property: the bits must be the same.
        np.testing.assert_array_equal(weight, old_weight)
        np.testing.assert_array_equal(bias, old_bias)
        assert not np.shares_memory(new_weight, weight) and not np.shares_memory(new_bias, bias)
        assert not np.allclose(new_weight, weight, rtol=1e-6, atol=0.0), "the step must change the weights"
    np.testing.assert_array_equal(seed.x, x)
    np.testing.assert_array_equal(seed.y, y)


@pytest.mark.parametrize("key", ["000", "001", "002"])
def test_float32_inputs_are_computed_in_float64(key):
    seed = example(key)
    params32 = [(w.astype(np.float32), None if b is None else b.astype(np.float32)) for w, b in seed.params]
    x32, y32 = seed.x.astype(np.float32), seed.y.astype(np.float32)
    # float32 -> float64 is exact, so the float64 run on the widened arrays is the answer.
    params64 = [(w.astype(np.float64), None if b is None else b.astype(np.float64)) for w, b in params32]
    x64, y64 = x32.astype(np.float64), y32.astype(np.float64)

    output = reference.forward(seed.network, params32, x32)
    assert output.dtype == np.float64
    np.testing.assert_allclose(output, reference.forward(seed.network, params64, x64), rtol=1e-15, atol=0.0)

    loss, grads = reference.loss_and_gradients(seed.network, params32, x32, y32)
    loss64, grads64 = reference.loss_and_gradients(seed.network, params64, x64, y64)
    assert isinstance(loss, float)
    assert loss == pytest.approx(loss64, rel=1e-15, abs=0.0)
    assert all(g.dtype == np.float64 for pair in grads for g in pair if g is not None)
    _assert_params_close(grads, grads64, rtol=1e-15)

    updated = reference.sgd_step(seed.network, params32, x32, y32, seed.learning_rate)
    assert all(p.dtype == np.float64 for pair in updated for p in pair if p is not None)
    _assert_params_close(updated, reference.sgd_step(seed.network, params64, x64, y64, seed.learning_rate), 1e-15)

    trajectory = reference.train(seed.network, params32, x32, y32, seed.batches, seed.learning_rate)
    trajectory64 = reference.train(seed.network, params64, x64, y64, seed.batches, seed.learning_rate)
    assert trajectory.losses.dtype == np.float64
    np.testing.assert_allclose(trajectory.losses, trajectory64.losses, rtol=1e-15, atol=0.0)
    _assert_params_close(trajectory.params, trajectory64.params, rtol=1e-15)


def test_int32_class_labels_give_the_same_loss_as_int64():
    network = reference.Network((2, 3), "identity", "cross_entropy")
    params = reference.init_params(network, seed=3)
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    loss32, _ = reference.loss_and_gradients(network, params, x, np.array([2, 0], dtype=np.int32))
    loss64, _ = reference.loss_and_gradients(network, params, x, np.array([2, 0], dtype=np.int64))
    assert loss32 == pytest.approx(loss64, rel=1e-15, abs=0.0)


@given(data=st.data(), learning_rate=st.floats(1e-3, 2.0))
def test_one_training_iteration_over_the_whole_batch_is_one_sgd_step(data, learning_rate):
    problem = draw_problem(data, ALL_ACTIVATIONS, max_depth=3, max_width=4, max_batch=4)
    note(problem.repro())
    network, params, x, y = problem.network, problem.params, problem.x, problem.y
    whole_batch = [np.arange(x.shape[0])]
    trajectory = reference.train(network, params, x, y, whole_batch, learning_rate)
    assert trajectory.losses[0] == pytest.approx(reference.loss(network, params, x, y), rel=1e-15, abs=0.0)
    _assert_params_close(trajectory.params, reference.sgd_step(network, params, x, y, learning_rate), rtol=1e-15)
