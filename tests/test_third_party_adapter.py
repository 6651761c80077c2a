"""Anyone's implementation plugs in: a 30-line NumPy adapter, loaded by name and checked."""

import types

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.adapters import Adapter, AdapterError, load_adapter
from backprop_conformance.adapters import loading as loading_module
from backprop_conformance.reference.seeds import example


class TinyNumpyAdapter:
    """A third party's backprop: only the required method (sgd_step and train are derived)."""

    name = "tiny-numpy"

    def loss_and_gradients(self, network, params, x, y):
        act = {"identity": lambda z: z, "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh,
               "relu": lambda z: np.maximum(z, 0)}
        slope = {"identity": lambda a: np.ones_like(a), "sigmoid": lambda a: a * (1 - a),
                 "tanh": lambda a: 1 - a**2, "relu": lambda a: (a > 0) * 1.0}
        activations = [x]
        for (w, b), name in zip(params, network.activations):
            activations.append(act[name](activations[-1] @ w.T + (0 if b is None else b)))
        a, m = activations[-1], len(x)
        n = 1 if network.reduction == "sum" else m * a.shape[1]
        if network.loss == "mse":
            loss, delta = ((a - y) ** 2).sum() / n, 2 * (a - y) * slope[network.activations[-1]](a) / n
        elif network.loss_name in ("bce", "bce_with_logits"):
            loss, delta = -(y * np.log(a) + (1 - y) * np.log(1 - a)).sum() / n, (a - y) / n
        else:
            n = 1 if network.reduction == "sum" else m
            p = np.exp(a - a.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            loss, delta = -np.log(p[np.arange(m), y]).sum() / n, (p - np.eye(a.shape[1])[y]) / n
        grads = []
        for index in reversed(range(len(params))):
            w, b = params[index]
            grads.insert(0, (delta.T @ activations[index], None if b is None else delta.sum(0)))
            delta = (delta @ w) * slope[network.activations[index - 1]](activations[index]) if index else delta
        return loss, grads


def test_a_third_party_adapter_is_loaded_by_name_and_agrees_with_the_reference():
    adapter = load_adapter("tests.test_third_party_adapter:TinyNumpyAdapter")
    assert isinstance(adapter, Adapter) and adapter.dtype == "float64" and adapter.label == "tiny-numpy float64"
    for key in ("000", "001", "002"):
        case = example(key)
        loss, grads = adapter.loss_and_gradients(case.network, case.params, case.x, case.y)
        expected_loss, expected = reference.loss_and_gradients(case.network, case.params, case.x, case.y)
        assert loss == pytest.approx(expected_loss, rel=1e-13)
        assert reference.worst_relative_error(grads, expected) < 1e-12
        stepped = adapter.sgd_step(case.network, case.params, case.x, case.y, case.learning_rate)  # derived
        wanted = reference.sgd_step(case.network, case.params, case.x, case.y, case.learning_rate)
        assert reference.worst_relative_error(stepped, wanted) < 1e-12
        trajectory = adapter.train(case.network, case.params, case.x, case.y, case.batches, case.learning_rate)
        expected_trajectory = reference.train(case.network, case.params, case.x, case.y, case.batches,
                                              case.learning_rate)
        assert reference.relative_error(trajectory.losses, expected_trajectory.losses) < 1e-12
        assert reference.worst_relative_error(trajectory.params, expected_trajectory.params) < 1e-12


def test_an_instance_a_class_and_a_factory_all_load():
    for target in (TinyNumpyAdapter(), TinyNumpyAdapter, lambda: TinyNumpyAdapter()):
        assert load_adapter(target).name == "tiny-numpy"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tests.no_such_module:Adapter", r"cannot import module 'tests.no_such_module'"),
        ("tests.test_third_party_adapter:NoSuchAdapter", r"has no attribute 'NoSuchAdapter'"),
        ("tests.test_third_party_adapter:test_an_instance_a_class_and_a_factory_all_load", r"has no 'name'"),
        ("no-colon-and-no-such-name", r"neither 'package.module:attribute' nor a known name"),
    ],
)
def test_loading_errors_say_what_is_missing(spec, message):
    with pytest.raises(AdapterError, match=message):
        load_adapter(spec)


def test_an_adapter_without_the_required_method_is_refused_naming_it():
    nameless_method = types.SimpleNamespace(name="half-done")
    with pytest.raises(AdapterError, match=r"adapter 'half-done' has no method loss_and_gradients"):
        load_adapter(nameless_method)


def test_adapters_installed_by_other_packages_are_found_through_entry_points(monkeypatch):
    entry_point = types.SimpleNamespace(name="tiny", load=lambda: TinyNumpyAdapter)

    def fake_entry_points(group):
        assert group == "backprop_conformance.adapters"
        return [entry_point]

    monkeypatch.setattr(loading_module, "entry_points", fake_entry_points)
    assert load_adapter("tiny").name == "tiny-numpy"
