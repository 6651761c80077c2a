"""torch.optim and optax behind the adapters, each in its own convention, against the reference's optimizers;
and the capability: an adapter whose train takes no optimizer is SGD-only, never failed for it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from backprop_conformance.adapters.protocol import Adapter, Unsupported
from backprop_conformance.reference import Network, Optimizer, batch_schedule, init_params, train
from tests.broken_adapters import CorrectNumpy

NETWORK = Network((3, 5, 4, 2), ("tanh", "sigmoid", "identity"), "mse")
#: Default and non-default hyperparameters of every rule; a setting a convention cannot express is left out there.
SETTINGS = [
    ("sgd", {}), ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("sgd", {"momentum": 0.8, "dampening": 0.3}),
    ("adam", {}), ("adam", {"amsgrad": True, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ("adam", {"eps_root": 1e-10}), ("adam", {"nesterov": True, "betas": (0.8, 0.99)}),
    ("adamw", {"nesterov": True, "weight_decay": 0.1}),
    ("adamw", {}), ("adamw", {"weight_decay": 0.3, "amsgrad": True}), ("adamw", {"weight_decay": 0.3}),
    ("rmsprop", {}), ("rmsprop", {"alpha": 0.8, "momentum": 0.5, "centered": True, "weight_decay": 0.1, "eps": 1e-4}),
    ("rmsprop", {"bias_correction": True, "initial_scale": 0.1, "momentum": 0.9, "nesterov": True}),
    ("rmsprop", {"eps_in_sqrt": False, "centered": True, "eps": 1e-6}),
    ("rmsprop", {"centered": True, "bias_correction": True, "initial_scale": 0.05, "alpha": 0.8}),
    ("adagrad", {}), ("adagrad", {"initial_accumulator_value": 0.3, "weight_decay": 0.1, "eps": 1e-4}),
    ("adagrad", {"lr_decay": 0.1}),
]
#: Each framework's implementations of the rules, and the convention each follows: torch.optim's three paths.
FRAMEWORKS = {"torch": "torch", "torch-foreach": "torch", "torch-fused": "torch", "optax": "optax"}


def _adapter(framework: str, dtype: str = "float64") -> Adapter:
    if framework.startswith("torch"):
        pytest.importorskip("torch")
        from backprop_conformance.adapters.torch_adapter import TorchAdapter

        _, _, path = framework.partition("-")
        return Adapter(TorchAdapter(dtype, optimizer_path=path or "single"))
    pytest.importorskip("optax")
    from backprop_conformance.adapters.jax_adapter import JaxAdapter

    return Adapter(JaxAdapter(dtype))


def _problem():
    rng = np.random.default_rng(2)
    # 7 samples in batches of 3, shuffled, 3 epochs: 9 steps with a partial last batch per epoch.
    return init_params(NETWORK, seed=1), rng.normal(size=(7, 3)), rng.normal(size=(7, 2)), \
        batch_schedule(7, 3, epochs=3, seed=1)


def _worst_relative(actual, expected) -> float:
    return max(float(np.max(np.abs(a - e) / np.abs(e))) for pa, pe in zip(actual, expected)
               for a, e in zip(pa, pe) if e is not None)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
@pytest.mark.parametrize(("name", "settings"), SETTINGS, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={w}" for k, w in v.items()) or "defaults")
def test_the_framework_matches_the_reference_in_its_own_convention_to_1e_12(framework, name, settings):
    try:
        optimizer = Optimizer(name, FRAMEWORKS[framework], lr=0.05, **settings)
    except ValueError as error:
        assert "cannot be expressed" in str(error)
        return
    adapter = _adapter(framework)
    params, x, y, batches = _problem()
    expected = train(NETWORK, params, x, y, batches, optimizer)
    if framework == "torch-fused" and name == "rmsprop":
        with pytest.raises(Unsupported, match=r"torch.optim.RMSprop has no fused path"):
            adapter.train(NETWORK, params, x, y, batches, optimizer.lr, optimizer)
        return
    actual = adapter.train(NETWORK, params, x, y, batches, optimizer.lr, optimizer)
    assert len(batches) >= 9
    assert _worst_relative(actual.params, expected.params) <= 1e-12
    np.testing.assert_allclose(actual.losses, expected.losses, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("framework", "other"), [("torch", "optax"), ("jax", "torch")])
def test_a_framework_is_not_applicable_in_the_other_convention(framework, other):
    adapter = _adapter(framework)
    params, x, y, batches = _problem()
    with pytest.raises(Unsupported, match=f"not {other}"):
        adapter.train(NETWORK, params, x, y, batches, 0.1, Optimizer("adam", other, lr=0.1))


class TrainWithoutOptimizer(CorrectNumpy):
    name = "sgd only"

    def train(self, network, params, x, y, batches, learning_rate):
        raise AssertionError("never called with an optimizer")


class TrainWithKeywords(CorrectNumpy):
    name = "keywords"
    def __init__(self):
        self.seen = []

    def train(self, network, params, x, y, batches, learning_rate, **options):
        self.seen.append(options["optimizer"])
        return train(network, params, x, y, batches, options["optimizer"])


def test_an_adapter_whose_train_takes_no_optimizer_is_sgd_only():
    params, x, y, batches = _problem()
    optimizer = Optimizer("rmsprop", lr=0.01)
    for implementation in (TrainWithoutOptimizer(), CorrectNumpy()):
        with pytest.raises(Unsupported, match="plain gradient descent only"):
            Adapter(implementation).train(NETWORK, params, x, y, batches, 0.01, optimizer)
    derived = Adapter(CorrectNumpy()).train(NETWORK, params, x, y, batches, 0.01)  # plain SGD still derived
    np.testing.assert_allclose(derived.losses, train(NETWORK, params, x, y, batches, 0.01).losses, rtol=1e-13)


def test_the_optimizer_is_handed_over_as_a_keyword_and_the_result_checked():
    params, x, y, batches = _problem()
    optimizer = Optimizer("adagrad", "optax", lr=0.1)
    implementation = TrainWithKeywords()
    result = Adapter(implementation).train(NETWORK, params, x, y, batches, optimizer.lr, optimizer)
    assert implementation.seen == [optimizer]
    assert _worst_relative(result.params, train(NETWORK, params, x, y, batches, optimizer).params) <= 1e-15


def test_bad_optimizer_conventions_are_named():
    class Odd(TrainWithKeywords):
        optimizer_conventions = ("keras",)

    params, x, y, batches = _problem()
    with pytest.raises(Exception, match=r"optimizer_conventions=.*keras"):
        Adapter(Odd()).train(NETWORK, params, x, y, batches, 0.1, Optimizer("adam", lr=0.1))


def test_a_convention_declared_twice_counts_once():
    from backprop_conformance.adapters.optimizer_support import optimizer_conventions

    class Twice(TrainWithKeywords):
        optimizer_conventions = ("optax", "torch", "optax")

    assert optimizer_conventions(Twice()) == ("optax", "torch")


def test_no_conventions_or_a_learning_rate_that_is_not_the_optimizers_is_refused():
    class Empty(TrainWithKeywords):
        optimizer_conventions = ()

    params, x, y, batches = _problem()
    with pytest.raises(Exception, match=r"optimizer_conventions=\(\) must be a non-empty list"):
        Adapter(Empty()).train(NETWORK, params, x, y, batches, 0.1, Optimizer("adam", lr=0.1))
    with pytest.raises(ValueError, match=r"learning_rate=0.2 is not the optimizer's lr=0.1"):
        Adapter(TrainWithKeywords()).train(NETWORK, params, x, y, batches, 0.2, Optimizer("adam", lr=0.1))


@pytest.mark.parametrize(("path", "selected"), [("single", {"foreach": False}), ("foreach", {"foreach": True}),
                                                ("fused", {"fused": True})])
def test_each_torch_path_builds_the_optimizer_that_runs_it(path, selected):
    torch = pytest.importorskip("torch")
    from backprop_conformance.adapters.loading import load_adapter
    from backprop_conformance.adapters.torch_optimizers import torch_optimizer

    built = torch_optimizer(torch, Optimizer("adam", lr=0.1), [torch.zeros(2, dtype=torch.float64)], path)
    assert {key: built.defaults[key] for key in selected} == selected
    if path != "single":
        assert load_adapter(f"torch-float32-{path}").implementation.optimizer_path == path


def test_an_unknown_torch_path_is_named():
    pytest.importorskip("torch")
    from backprop_conformance.adapters.torch_adapter import TorchAdapter

    with pytest.raises(ValueError, match=r"optimizer_path='fast' is not one of 'single', 'foreach', 'fused'"):
        TorchAdapter(optimizer_path="fast")


@pytest.mark.parametrize("framework", ["torch-foreach", "torch-fused"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_torch_paths_in_float32_stay_within_the_tolerance_model(framework, data):
    """The suite's own check on drawn optimizers and schedules: float32 through the fused kernel (or the foreach
    ops) is within the rounding-error model, as the single path is."""
    from backprop_conformance.suite.comparisons import compare_optimizer_train
    from backprop_conformance.suite.judge import check
    from backprop_conformance.suite.strategies_optimizers import optimizer_cases

    adapter = _adapter(framework, "float32")
    case = data.draw(optimizer_cases("torch"), label="case")
    if framework == "torch-fused":
        assume(case.optimizer.name != "rmsprop")
    check(adapter, case, compare_optimizer_train)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_optax_centered_rmsprop_with_bias_correction_stays_within_the_tolerance_model(dtype, data):
    """The pair the strategies draw only rarely (from an initial_scale of 0.01), on every drawn case: the first
    corrected variance, which optax takes by cancellation and the reference expanded, is within the model."""
    import dataclasses

    from backprop_conformance.suite.comparisons import compare_optimizer_train
    from backprop_conformance.suite.judge import check
    from backprop_conformance.suite.strategies_optimizers import MIN_CENTERED_CORRECTED_SCALE, optimizer_cases

    adapter = _adapter("optax", dtype)
    case = data.draw(optimizer_cases("optax"), label="case")
    scale = data.draw(st.floats(MIN_CENTERED_CORRECTED_SCALE, 1.0), label="initial_scale")
    alpha = data.draw(st.floats(0.5, 0.999), label="alpha")
    optimizer = Optimizer("rmsprop", "optax", lr=data.draw(st.sampled_from([1e-3, 1e-2]), label="lr"), centered=True,
                          bias_correction=True, initial_scale=scale, alpha=alpha)
    check(adapter, dataclasses.replace(case, learning_rate=optimizer.lr, optimizer=optimizer), compare_optimizer_train)
