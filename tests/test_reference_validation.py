"""Every bad input is refused with ValueError or TypeError naming the field and the value.

Each data case (params, x, y) runs through every public function that takes
it, so no entry point skips the checks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference import Network

SIGMOID_BCE = Network((2, 3, 1), ("sigmoid", "sigmoid"), "bce", bias=False)  # document 000
TANH_MSE = Network((2, 3, 1), ("tanh", "identity"), "mse", bias=True)
CLASSIFIER = Network((2, 3), "identity", "cross_entropy", bias=True)

X = np.array([[0.8, -0.4], [0.1, 0.3]])


def _params(network: Network) -> list:
    return reference.init_params(network, seed=0)


def _targets(network: Network) -> np.ndarray:
    if network.loss_name == "cross_entropy":
        return np.array([2, 0])
    return np.array([[1.0], [0.25]])


@dataclass(frozen=True)
class BadData:
    """One bad (params, x, y) and the error it must raise."""

    network: Network
    params: Any
    x: Any
    y: Any
    error: type[Exception]
    match: str
    needs_y: bool = True  # False: forward() sees the mistake too


def _case(network: Network, error: type[Exception], match: str, **changes: Any) -> BadData:
    case = BadData(network, _params(network), X.copy(), _targets(network), error, match, needs_y=False)
    return replace(case, **changes)


def _with_entry(array: np.ndarray, position: tuple, value: float) -> np.ndarray:
    changed = array.copy()
    changed[position] = value
    return changed


def _bad_data_cases() -> dict[str, BadData]:
    sigmoid_params, tanh_params = _params(SIGMOID_BCE), _params(TANH_MSE)
    (w1, _), (w2, _) = sigmoid_params
    (tw1, tb1), (tw2, tb2) = tanh_params
    return {
        "params with too few layers": _case(
            SIGMOID_BCE, ValueError, r"params has 1 layers; network 2-3-1 .* has 2", params=sigmoid_params[:1]
        ),
        "params with too many layers": _case(
            SIGMOID_BCE, ValueError, r"params has 3 layers", params=[*sigmoid_params, sigmoid_params[1]]
        ),
        "params not a list": _case(SIGMOID_BCE, TypeError, r"params must be a list .* got ndarray", params=w1),
        "params entry not a pair": _case(
            SIGMOID_BCE, TypeError, r"params\[1\] must be a \(W, b\) pair", params=[(w1, None), (w2,)]
        ),
        "W1 transposed": _case(
            SIGMOID_BCE,
            ValueError,
            r"W1 has shape \(2, 3\).*\(n_out, n_in\) = \(3, 2\)",
            params=[(w1.T, None), (w2, None)],
        ),
        "W2 of the wrong shape": _case(
            SIGMOID_BCE, ValueError, r"W2 has shape \(3, 1\)", params=[(w1, None), (w2.T, None)]
        ),
        "b2 of the wrong shape": _case(
            TANH_MSE,
            ValueError,
            r"b2 has shape \(3,\); the network needs \(1,\)",
            params=[(tw1, tb1), (tw2, np.zeros(3))],
        ),
        "nan in W1": _case(
            SIGMOID_BCE,
            ValueError,
            r"W1 has a non-finite entry .*nan.* at \[1, 0\]",
            params=[(_with_entry(w1, (1, 0), np.nan), None), (w2, None)],
        ),
        "inf in W2": _case(
            SIGMOID_BCE,
            ValueError,
            r"W2 has a non-finite entry .*inf.* at \[0, 2\]",
            params=[(w1, None), (_with_entry(w2, (0, 2), np.inf), None)],
        ),
        "-inf in b1": _case(
            TANH_MSE,
            ValueError,
            r"b1 has a non-finite entry .*-inf.* at \[2\]",
            params=[(tw1, _with_entry(tb1, (2,), -np.inf)), (tw2, tb2)],
        ),
        "b given when bias=False": _case(
            SIGMOID_BCE,
            ValueError,
            r"b1=\[0.0, 0.0, 0.0\] must be None: the network has no biases \(bias=False\)",
            params=[(w1, np.zeros(3)), (w2, None)],
        ),
        "b missing when bias=True": _case(
            TANH_MSE, ValueError, r"b2 is None but the network has biases", params=[(tw1, tb1), (tw2, None)]
        ),
        "nan in x": _case(
            SIGMOID_BCE, ValueError, r"x has a non-finite entry .*nan.* at \[1, 1\]", x=_with_entry(X, (1, 1), np.nan)
        ),
        "inf in x": _case(
            SIGMOID_BCE, ValueError, r"x has a non-finite entry .*inf.* at \[0, 0\]", x=_with_entry(X, (0, 0), np.inf)
        ),
        "x with the wrong width": _case(
            SIGMOID_BCE, ValueError, r"x has shape \(2, 3\); the network needs \(m, 2\)", x=np.zeros((2, 3))
        ),
        "x of one dimension": _case(SIGMOID_BCE, ValueError, r"x has shape \(2,\)", x=np.zeros(2)),
        "x an empty batch": _case(
            SIGMOID_BCE, ValueError, r"x is an empty batch \(m=0\)", x=np.zeros((0, 2)), y=np.zeros((0, 1))
        ),
        "x not numeric": _case(SIGMOID_BCE, TypeError, r"x is not a numeric array", x=[["a", "b"]]),
        "nan in y": _case(
            TANH_MSE,
            ValueError,
            r"y has a non-finite entry .*nan.* at \[1, 0\]",
            y=np.array([[1.0], [np.nan]]),
            needs_y=True,
        ),
        "y of the wrong shape": _case(
            TANH_MSE, ValueError, r"y has shape \(2,\); mse needs \(2, 1\)", y=np.array([1.0, 0.0]), needs_y=True
        ),
        "bce target above 1": _case(
            SIGMOID_BCE, ValueError, r"y\[1, 0\]=.*1\.5.* is outside \[0, 1\]", y=np.array([[1.0], [1.5]]), needs_y=True
        ),
        "bce target below 0": _case(
            SIGMOID_BCE,
            ValueError,
            r"y\[0, 0\]=.*-0\.25.* is outside \[0, 1\]",
            y=np.array([[-0.25], [0.0]]),
            needs_y=True,
        ),
        "class label too large": _case(
            CLASSIFIER, ValueError, r"y\[1\]=3 is not a class index in \[0, 2\]", y=np.array([0, 3]), needs_y=True
        ),
        "class label negative": _case(
            CLASSIFIER, ValueError, r"y\[0\]=-1 is not a class index in \[0, 2\]", y=np.array([-1, 0]), needs_y=True
        ),
        "class labels as floats": _case(
            CLASSIFIER,
            TypeError,
            r"y must hold integer class labels .* got dtype float64",
            y=np.array([0.0, 1.0]),
            needs_y=True,
        ),
        "class labels as booleans": _case(
            CLASSIFIER,
            TypeError,
            r"y must hold integer class labels .* got dtype bool",
            y=np.array([True, False]),
            needs_y=True,
        ),
        "class labels as a column": _case(
            CLASSIFIER,
            ValueError,
            r"y has shape \(2, 1\); cross_entropy needs labels \(2,\)",
            y=np.array([[0], [1]]),
            needs_y=True,
        ),
    }


BAD_DATA = _bad_data_cases()

PUBLIC_FUNCTIONS: dict[str, Callable[[Network, Any, Any, Any], Any]] = {
    "forward": lambda network, params, x, y: reference.forward(network, params, x),
    "loss": reference.loss,
    "loss_and_gradients": reference.loss_and_gradients,
    "sgd_step": lambda network, params, x, y: reference.sgd_step(network, params, x, y, 0.1),
    "train": lambda network, params, x, y: reference.train(network, params, x, y, [np.array([0])], 0.1),
    "chain_rule_gradients": reference.chain_rule_gradients,
    "complex_step_gradients": reference.complex_step_gradients,
    "finite_difference_gradients": reference.finite_difference_gradients,
    "explain": lambda network, params, x, y: reference.explain(network, params, x, y, "W1[0,0]"),
}


@pytest.mark.parametrize(
    ("case", "function"),
    [
        (case, function)
        for case, bad in BAD_DATA.items()
        for function in PUBLIC_FUNCTIONS
        if not (bad.needs_y and function == "forward")  # forward takes no targets
    ],
)
def test_bad_data_is_refused_naming_the_field_and_the_value(case, function):
    bad = BAD_DATA[case]
    with pytest.raises(bad.error, match=bad.match):
        PUBLIC_FUNCTIONS[function](bad.network, bad.params, bad.x, bad.y)


BAD_NETWORKS = {
    "unknown activation": (
        dict(sizes=(2, 3, 1), activations=("sigmoid", "softmax"), loss="mse"),
        ValueError,
        r"activations\[1\]='softmax' is not one of identity, sigmoid, tanh, relu",
    ),
    "unknown loss": (
        dict(sizes=(2, 1), activations="sigmoid", loss="hinge"),
        ValueError,
        r"loss='hinge' is not one of",
    ),
    "unknown reduction": (
        dict(sizes=(2, 1), activations="sigmoid", loss="mse", reduction="max"),
        ValueError,
        r"reduction='max'",
    ),
    "a width of 0": (dict(sizes=(2, 0, 1), activations="tanh", loss="mse"), ValueError, r"sizes\[1\]=0 is below 1"),
    "a negative width": (dict(sizes=(-2, 1), activations="tanh", loss="mse"), ValueError, r"sizes\[0\]=-2 is below 1"),
    "a fractional width": (
        dict(sizes=(2, 2.5, 1), activations="tanh", loss="mse"),
        TypeError,
        r"sizes\[1\]=2\.5 must be an integer",
    ),
    "a single size": (
        dict(sizes=(2,), activations=(), loss="mse"),
        ValueError,
        r"sizes=\(2,\) needs an input and an output",
    ),
    "too many activations": (
        dict(sizes=(2, 3, 1), activations=("tanh",) * 3, loss="mse"),
        ValueError,
        r"activations has 3 entries, the network has 2 layers",
    ),
    "bce without a sigmoid output": (
        dict(sizes=(2, 3, 1), activations=("sigmoid", "identity"), loss="bce"),
        ValueError,
        r"loss='bce' needs a sigmoid output layer, got activations\[1\]='identity'",
    ),
    "cross_entropy on a sigmoid output": (
        dict(sizes=(2, 3), activations="sigmoid", loss="cross_entropy"),
        ValueError,
        r"loss='cross_entropy' needs .*identity.*activations\[0\]='sigmoid'",
    ),
    "cross_entropy with one class": (
        dict(sizes=(2, 1), activations="identity", loss="cross_entropy"),
        ValueError,
        r"sizes\[-1\]=1",
    ),
    "bias not a bool": (
        dict(sizes=(2, 1), activations="tanh", loss="mse", bias=1),
        TypeError,
        r"bias=1 must be True or False",
    ),
}


@pytest.mark.parametrize("case", BAD_NETWORKS, ids=str)
def test_bad_network_spec_is_refused_naming_the_field_and_the_value(case):
    fields, error, match = BAD_NETWORKS[case]
    with pytest.raises(error, match=match):
        Network(**fields)


BAD_LEARNING_RATES = {
    "nan": (float("nan"), ValueError, r"learning_rate=nan must be finite and > 0"),
    "inf": (float("inf"), ValueError, r"learning_rate=inf must be finite and > 0"),
    "zero": (0.0, ValueError, r"learning_rate=0\.0 must be finite and > 0"),
    "negative": (-0.5, ValueError, r"learning_rate=-0\.5 must be finite and > 0"),
    "a string": ("0.1", TypeError, r"learning_rate='0\.1' must be a real number"),
    "a boolean": (True, TypeError, r"learning_rate=True must be a real number"),
}


@pytest.mark.parametrize("case", BAD_LEARNING_RATES, ids=str)
def test_bad_learning_rate_is_refused_by_sgd_step_and_train(case):
    learning_rate, error, match = BAD_LEARNING_RATES[case]
    params, y = _params(SIGMOID_BCE), _targets(SIGMOID_BCE)
    with pytest.raises(error, match=match):
        reference.sgd_step(SIGMOID_BCE, params, X, y, learning_rate)
    with pytest.raises(error, match=match):
        reference.train(SIGMOID_BCE, params, X, y, [np.array([0, 1])], learning_rate)


BAD_SCHEDULES = {
    "batch size 0": (dict(n_samples=10, batch_size=0, epochs=1), ValueError, r"batch_size=0 is below 1"),
    "negative batch size": (dict(n_samples=10, batch_size=-3, epochs=1), ValueError, r"batch_size=-3 is below 1"),
    "fractional batch size": (
        dict(n_samples=10, batch_size=2.0, epochs=1),
        TypeError,
        r"batch_size=2\.0 must be an integer",
    ),
    "no samples": (dict(n_samples=0, batch_size=2, epochs=1), ValueError, r"n_samples=0 is below 1"),
    "no epochs": (dict(n_samples=10, batch_size=2, epochs=0), ValueError, r"epochs=0 is below 1"),
}


@pytest.mark.parametrize("case", BAD_SCHEDULES, ids=str)
def test_bad_schedule_arguments_are_refused(case):
    arguments, error, match = BAD_SCHEDULES[case]
    with pytest.raises(error, match=match):
        reference.batch_schedule(**arguments)


@pytest.mark.parametrize("batch_size", [0, -1])
def test_iterations_per_epoch_refuses_a_batch_size_below_1(batch_size):
    with pytest.raises(ValueError, match=rf"batch_size={batch_size} is below 1"):
        reference.iterations_per_epoch(10, batch_size)


def test_a_negative_seed_is_refused_naming_the_seed():
    with pytest.raises(ValueError) as refused:
        reference.batch_schedule(10, 2, epochs=1, seed=-1)
    assert "seed=-1" in str(refused.value), str(refused.value)


BAD_BATCHES = {
    "an empty index array": (
        [np.array([0, 1]), np.array([], dtype=np.int64)],
        ValueError,
        r"batches\[1\] is an empty batch",
    ),
    "an empty list": ([[0], []], ValueError, r"batches\[1\] is an empty batch"),
    "no batches at all": ([], ValueError, r"batches is empty"),
    "an index past the end": ([np.array([0, 2])], ValueError, r"batches\[0\] holds index 2, outside \[0, 1\]"),
    "a negative index": ([np.array([1]), np.array([-1])], ValueError, r"batches\[1\] holds index -1, outside \[0, 1\]"),
    "float indices": ([np.array([0.0, 1.0])], TypeError, r"batches\[0\] must be a 1-d array of integer sample indices"),
    "boolean mask": ([np.array([True, False])], TypeError, r"batches\[0\] must be a 1-d array of integer"),
    "not a list": (np.array([0, 1]), TypeError, r"batches must be a list of index arrays, got ndarray"),
}


@pytest.mark.parametrize("case", BAD_BATCHES, ids=str)
def test_bad_batches_are_refused_by_train(case):
    batches, error, match = BAD_BATCHES[case]
    with pytest.raises(error, match=match):
        reference.train(SIGMOID_BCE, _params(SIGMOID_BCE), X, _targets(SIGMOID_BCE), batches, 0.1)
