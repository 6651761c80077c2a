"""No public function of the reference modifies what it is given, or hands back a view of it.

Non-mutation is exact: the arrays must hold the same bits afterwards, so
these tests compare with array_equal, not with a tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference.seeds import example
from tests.strategies_reference import ALL_ACTIVATIONS, draw_problem

PUBLIC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "forward": lambda network, params, x, y: reference.forward(network, params, x),
    "loss": reference.loss,
    "loss_and_gradients": reference.loss_and_gradients,
    "sgd_step": lambda network, params, x, y: reference.sgd_step(network, params, x, y, 0.5),
    "train": lambda network, params, x, y: reference.train(
        network, params, x, y, reference.batch_schedule(len(x), 1, epochs=2, seed=0), 0.5
    ),
    "chain_rule_gradients": reference.chain_rule_gradients,
    "complex_step_gradients": reference.complex_step_gradients,
    "finite_difference_gradients": reference.finite_difference_gradients,
    "explain": lambda network, params, x, y: reference.explain(network, params, x, y, "W1[0,0]"),
}


def _classifier() -> tuple:
    network = reference.Network((3, 4, 3), ("relu", "identity"), "cross_entropy")
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    return network, reference.init_params(network, seed=4), x, np.array([2, 0])


PROBLEMS: dict[str, Callable[[], tuple]] = {
    "000": lambda: (lambda e: (e.network, e.params, e.x, e.y))(example("000")),
    "001": lambda: (lambda e: (e.network, e.params, e.x[:2], e.y[:2]))(example("001")),
    "classifier": _classifier,
}


def _arrays_of(value: Any) -> list[np.ndarray]:
    """Return every NumPy array inside a result (tuples, lists, Trajectory, Explanation)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (list, tuple)):
        return [array for item in value for array in _arrays_of(item)]
    if isinstance(value, reference.Trajectory):
        return _arrays_of(value.losses) + _arrays_of(value.params)
    return []


def _assert_untouched_and_unshared(function: str, network, params, x, y) -> None:
    __tracebackhide__ = True
    pairs = [[weight, bias] for weight, bias in params]  # mutable pairs: a replaced entry would show
    inputs = [array for pair in pairs for array in pair if array is not None] + [x, y]
    copies = [array.copy() for array in inputs]
    result = PUBLIC_FUNCTIONS[function](network, pairs, x, y)
    for pair, (weight, bias) in zip(pairs, params):
        assert pair[0] is weight and pair[1] is bias, f"{function} replaced an entry of params"
    for array, copy in zip(inputs, copies):
        assert array.dtype == copy.dtype and array.shape == copy.shape, f"{function} changed an input's layout"
        np.testing.assert_array_equal(array, copy, err_msg=f"{function} modified an input")
    for output in _arrays_of(result):
        assert not any(np.shares_memory(output, array) for array in inputs), f"{function} returned a view of an input"


@pytest.mark.parametrize("function", PUBLIC_FUNCTIONS, ids=str)
@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_public_functions_leave_params_x_and_y_untouched(problem, function):
    _assert_untouched_and_unshared(function, *PROBLEMS[problem]())


@pytest.mark.parametrize("function", PUBLIC_FUNCTIONS, ids=str)
def test_float32_inputs_are_left_untouched_too(function):
    network, params, x, y = PROBLEMS["001"]()
    params32 = [(w.astype(np.float32), b.astype(np.float32)) for w, b in params]
    _assert_untouched_and_unshared(function, network, params32, x.astype(np.float32), y.astype(np.float32))


@pytest.mark.parametrize("function", ["loss_and_gradients", "sgd_step", "train", "forward"])
@given(data=st.data())
def test_drawn_problems_are_left_untouched(function, data):
    problem = draw_problem(data, ALL_ACTIVATIONS, max_depth=3, max_width=4, max_batch=3)
    note(problem.repro())
    _assert_untouched_and_unshared(function, problem.network, problem.params, problem.x, problem.y)


def test_examples_are_fresh_copies_that_callers_may_modify():
    first, second = example("001"), example("001")
    first.params[0][0][0, 0] += 1.0
    first.x[0, 0] += 1.0
    assert second.params[0][0][0, 0] != first.params[0][0][0, 0]
    assert second.x[0, 0] != first.x[0, 0]
