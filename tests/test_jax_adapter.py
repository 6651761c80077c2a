"""Tests of adapters.jax_adapter: agreement with the reference, and its documented divergences."""

from __future__ import annotations

import copy
import importlib
import logging
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

import backprop_conformance.reference.seeds  # noqa: E402, F401
from backprop_conformance import reference  # noqa: E402
from backprop_conformance.adapters import Adapter, AdapterUnavailable, load_adapter  # noqa: E402
from backprop_conformance.adapters.jax_adapter import JaxAdapter  # noqa: E402
from backprop_conformance.adapters.jax_functions import (  # noqa: E402
    _forward_pass,
    _network_functions,
    from_jax_params,
    to_jax_params,
)
from backprop_conformance.adapters.jax_padded import _padded_loss_and_gradients_function  # noqa: E402
from backprop_conformance.reference.conventions import ACTIVATIONS, LOSSES, REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION  # noqa: E402
from backprop_conformance.reference.specs import base  # noqa: E402
from tests.combinations import LOSSES_TESTED, hidden_output_pairs  # noqa: E402

FLOAT64_TOLERANCE = 1e-12
# TODO(tolerances): use suite.tolerances
FLOAT32_TOLERANCE = 1e-4

DOCUMENTS = ("000", "001", "002")


@pytest.fixture(scope="module")
def float64_adapter() -> JaxAdapter:
    return JaxAdapter("float64")


@pytest.fixture(scope="module")
def float32_adapter() -> JaxAdapter:
    return JaxAdapter("float32")


# ---------------------------------------------------------------- cases


def _combinations():
    """Yield every loss x reduction x bias x (hidden, output) pair of ``tests.combinations``."""
    for loss in LOSSES_TESTED:
        for reduction in REDUCTIONS:
            for bias in (True, False):
                for hidden, output in hidden_output_pairs(loss):
                    label = f"{loss}-{reduction}-{'bias' if bias else 'nobias'}-{hidden}-{output}"
                    yield pytest.param(loss, reduction, bias, hidden, output, id=label)


COMBINATIONS = list(_combinations())


def _targets(network: reference.Network, rng: np.random.Generator, m: int) -> np.ndarray:
    """Return seeded targets valid for the network's loss."""
    n_out = network.sizes[-1]
    if network.loss_name == "cross_entropy":
        return rng.integers(0, n_out, size=m)
    if network.loss_name in ("bce", "bce_with_logits"):
        return rng.uniform(0.0, 1.0, size=(m, n_out))
    return rng.normal(size=(m, n_out))


def _random_case(loss, reduction, bias, hidden, output, seed=0, m=6, hidden_sizes=(4,)):
    """Return (network, params, x, y) of a fixed 3-4-k network (k = 2 outputs, 3 classes), seeded."""
    n_out = 3 if base(loss) == "cross_entropy" else 2
    sizes = (3, *hidden_sizes, n_out)
    activations = (hidden,) * len(hidden_sizes) + (output,)
    network = reference.Network(sizes, activations, loss, bias, reduction)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(m, 3))
    return network, reference.init_params(network, seed), x, _targets(network, rng, m)


def _document_case(key):
    example = reference.seeds.example(key)
    return example.network, example.params, example.x, example.y, example.learning_rate


# ---------------------------------------------------------------- assertions


def assert_params_close(actual, expected, tolerance, what):
    """Assert the worst norm-wise relative error over every array is within tolerance."""
    __tracebackhide__ = True
    assert len(actual) == len(expected), f"{what}: {len(actual)} layers, expected {len(expected)}"
    for layer, ((weight, bias), (expected_weight, expected_bias)) in enumerate(zip(actual, expected), 1):
        assert np.shape(weight) == np.shape(expected_weight), (
            f"{what}: W{layer} has shape {np.shape(weight)}, reference {np.shape(expected_weight)}"
        )
        assert (bias is None) == (expected_bias is None), f"{what}: b{layer} is {bias!r}"
    error = reference.worst_relative_error(actual, expected)
    assert error <= tolerance, f"{what}: worst relative error {error:.3e} > allowed {tolerance:.0e}"


def assert_adapter_matches_reference(adapter, network, params, x, y, learning_rate, tolerance):
    """Assert the loss, the gradients and one sgd step agree with the reference."""
    __tracebackhide__ = True
    label = f"jax {adapter.dtype} on {network.describe()}"
    value, grads = adapter.loss_and_gradients(network, params, x, y)
    expected_value, expected_grads = reference.loss_and_gradients(network, params, x, y)
    loss_error = reference.relative_error(value, expected_value)
    assert loss_error <= tolerance, f"{label}: loss {value!r} vs {expected_value!r}, rel {loss_error:.3e}"
    assert grads[0][0].dtype == np.dtype(adapter.dtype), f"{label}: grads are {grads[0][0].dtype}"
    assert_params_close(grads, expected_grads, tolerance, f"{label} gradients")
    stepped = adapter.sgd_step(network, params, x, y, learning_rate)
    expected_step = reference.sgd_step(network, params, x, y, learning_rate)
    assert_params_close(stepped, expected_step, tolerance, f"{label} sgd_step")


def assert_forward_matches_reference(adapter, network, params, x, tolerance):
    """Assert the forward pass agrees with the reference."""
    __tracebackhide__ = True
    output = adapter.forward(network, params, x)
    assert output.shape == (len(x), network.sizes[-1]) and output.dtype == np.dtype(adapter.dtype)
    error = reference.relative_error(output, reference.forward(network, params, x))
    assert error <= tolerance, f"jax {adapter.dtype} forward on {network.describe()}: rel error {error:.3e}"


# ---------------------------------------------------------------- agreement


@pytest.mark.parametrize("key", DOCUMENTS)
def test_document_networks_match_reference_float64(float64_adapter, key):
    network, params, x, y, learning_rate = _document_case(key)
    assert_adapter_matches_reference(float64_adapter, network, params, x, y, learning_rate, FLOAT64_TOLERANCE)
    assert_forward_matches_reference(float64_adapter, network, params, x, FLOAT64_TOLERANCE)


@pytest.mark.parametrize("key", DOCUMENTS)
def test_document_networks_match_reference_float32(float32_adapter, key):
    network, params, x, y, learning_rate = _document_case(key)
    assert_adapter_matches_reference(float32_adapter, network, params, x, y, learning_rate, FLOAT32_TOLERANCE)
    assert_forward_matches_reference(float32_adapter, network, params, x, FLOAT32_TOLERANCE)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("output", ACTIVATIONS)
def test_forward_matches_reference_for_every_activation(dtype, output):
    network, params, x, _ = _random_case("mse", "mean", True, "relu", output, seed=4, hidden_sizes=(5, 4))
    tolerance = FLOAT64_TOLERANCE if dtype == "float64" else FLOAT32_TOLERANCE
    assert_forward_matches_reference(JaxAdapter(dtype), network, params, x, tolerance)


@pytest.mark.parametrize(("loss", "reduction", "bias", "hidden", "output"), COMBINATIONS)
def test_every_combination_matches_reference_float64(float64_adapter, loss, reduction, bias, hidden, output):
    network, params, x, y = _random_case(loss, reduction, bias, hidden, output)
    assert_adapter_matches_reference(float64_adapter, network, params, x, y, 0.3, FLOAT64_TOLERANCE)


@pytest.mark.parametrize(("loss", "reduction", "bias", "hidden", "output"), COMBINATIONS)
def test_every_combination_matches_reference_float32(float32_adapter, loss, reduction, bias, hidden, output):
    network, params, x, y = _random_case(loss, reduction, bias, hidden, output)
    assert_adapter_matches_reference(float32_adapter, network, params, x, y, 0.3, FLOAT32_TOLERANCE)


@pytest.mark.parametrize("loss", LOSSES)
def test_train_follows_schedule_with_partial_last_batch(float64_adapter, loss):
    output = REQUIRED_OUTPUT_ACTIVATION[loss] or "tanh"
    network, params, x, y = _random_case(loss, "mean", True, "sigmoid", output, seed=3, m=10)
    batches = reference.batch_schedule(n_samples=10, batch_size=4, epochs=3, seed=0)
    assert [len(batch) for batch in batches] == [4, 4, 2] * 3  # the schedule has partial batches

    trajectory = float64_adapter.train(network, params, x, y, batches, learning_rate=0.5)
    expected = reference.train(network, params, x, y, batches, learning_rate=0.5)

    assert trajectory.losses.dtype == np.float64
    assert trajectory.losses.shape == (len(batches),)
    loss_error = reference.relative_error(trajectory.losses, expected.losses)
    assert loss_error <= FLOAT64_TOLERANCE, f"per-iteration losses differ: rel {loss_error:.3e}"
    assert_params_close(trajectory.params, expected.params, FLOAT64_TOLERANCE, "final params")


def test_document_002_training_matches_reference(float64_adapter):
    example = reference.seeds.example("002")
    arguments = (example.network, example.params, example.x, example.y, example.batches, example.learning_rate)
    trajectory = float64_adapter.train(*arguments)
    expected = reference.train(*arguments)
    assert reference.relative_error(trajectory.losses, expected.losses) <= FLOAT64_TOLERANCE
    assert_params_close(trajectory.params, expected.params, FLOAT64_TOLERANCE, "002 final params")


@pytest.mark.parametrize(
    "case",
    [("000",), ("cross_entropy", "sum", True, "relu", "identity"), ("bce", "mean", False, "tanh", "sigmoid")],
    ids=lambda case: "-".join(map(str, case)),
)
def test_jit_and_eager_give_the_same_numbers(case):
    # Eager mode compiles every primitive for every new shape, so these cases stay small and train
    # on full batches: the point is that jax.jit's fusions do not change the numbers beyond rounding.
    if len(case) == 1:
        network, params, x, y, learning_rate = _document_case(case[0])
    else:
        network, params, x, y = _random_case(*case, m=3)
        learning_rate = 0.3
    jitted, eager = JaxAdapter("float64", jit=True), JaxAdapter("float64", jit=False)
    value, grads = jitted.loss_and_gradients(network, params, x, y)
    eager_value, eager_grads = eager.loss_and_gradients(network, params, x, y)
    assert reference.relative_error(value, eager_value) <= FLOAT64_TOLERANCE
    assert_params_close(grads, eager_grads, FLOAT64_TOLERANCE, "jit vs eager gradients")
    batches = [np.arange(len(x))] * 3
    trajectory = jitted.train(network, params, x, y, batches, learning_rate)
    eager_trajectory = eager.train(network, params, x, y, batches, learning_rate)
    assert reference.relative_error(trajectory.losses, eager_trajectory.losses) <= FLOAT64_TOLERANCE
    assert_params_close(trajectory.params, eager_trajectory.params, FLOAT64_TOLERANCE, "jit vs eager train")
    output, eager_output = jitted.forward(network, params, x), eager.forward(network, params, x)
    assert reference.relative_error(output, eager_output) <= FLOAT64_TOLERANCE


def _compilations(caplog, name):
    """Return how many XLA compilations of jit(name) the captured log records."""
    messages = [record.getMessage() for record in caplog.records]
    return sum(f"compilation of jit({name})" in message for message in messages)


def test_each_shape_compiles_once_unpadded(caplog):
    # A shape no other test uses, so the first call must compile: after that, repeated calls of
    # every method with the same shapes reuse the cached jit objects and their compilations.
    adapter = JaxAdapter("float64", pad=False)
    network, params, x, y = _random_case("mse", "sum", True, "sigmoid", "tanh", m=7, hidden_sizes=(9,))
    functions = adapter._functions(network)
    builds = _network_functions.cache_info().misses
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        for _ in range(3):
            adapter.loss_and_gradients(network, params, x, y)
            adapter.sgd_step(network, params, x, y, 0.1)
            adapter.train(network, params, x, y, [np.arange(7)] * 2, 0.1)
    assert _compilations(caplog, "objective") == 1, caplog.text
    assert _compilations(caplog, "sgd_update") <= 1, caplog.text
    assert _network_functions.cache_info().misses == builds, "a jit object was rebuilt"
    assert adapter._functions(network) is functions


def test_padded_calls_compile_at_most_once(float64_adapter, caplog):
    # Padded, the shape is the bucket's, which other tests may have compiled already: at most one
    # compilation each in the first round, none in the next ones, and no jit object rebuilt.
    network, params, x, y = _random_case("mse", "sum", True, "sigmoid", "tanh", m=7, hidden_sizes=(9,))

    def every_method():
        float64_adapter.loss_and_gradients(network, params, x, y)
        float64_adapter.sgd_step(network, params, x, y, 0.1)
        float64_adapter.train(network, params, x, y, [np.arange(7), np.arange(3)], 0.1)
        float64_adapter.forward(network, params, x)

    names = ("padded_objective", "sgd_update", "padded_forward")
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        every_method()
        first_round = [_compilations(caplog, name) for name in names]
        builds = _padded_loss_and_gradients_function.cache_info().misses
        every_method()
        every_method()
    assert max(first_round) <= 1, caplog.text
    assert [_compilations(caplog, name) for name in names] == first_round, caplog.text
    assert _padded_loss_and_gradients_function.cache_info().misses == builds, "a jit object was rebuilt"


# ---------------------------------------------------------------- divergences, demonstrated


def test_divergence_kernel_layout_is_the_transpose_of_ours():
    network = reference.Network((3, 5, 2), ("tanh", "identity"), "mse")
    params = reference.init_params(network, seed=7)
    layers = to_jax_params(params, "float64")
    for (weight, bias), layer in zip(params, layers):
        assert layer["kernel"].shape == weight.shape[::-1]  # JAX (n_in, n_out), ours (n_out, n_in)
        assert np.array_equal(layer["kernel"], weight.T)
        assert np.array_equal(layer["bias"], bias)
    round_trip = from_jax_params(layers)
    for (weight, bias), (back_weight, back_bias) in zip(params, round_trip):
        assert np.array_equal(back_weight, weight) and np.array_equal(back_bias, bias)  # exact: moves only


def test_divergence_untransposed_kernel_gives_a_different_output():
    # Non-square: fed as-is, our (n_out, n_in) W cannot even multiply (m, n_in) rows.
    network = reference.Network((3, 2), ("identity",), "mse")
    params = reference.init_params(network, seed=8)
    x = np.random.default_rng(8).normal(size=(4, 3))
    untransposed = [{"kernel": weight, "bias": bias} for weight, bias in params]
    with jax.enable_x64(True), pytest.raises(TypeError):
        _forward_pass(network.activations, untransposed, x)
    # Square and not symmetric: fed as-is it runs and silently computes x W + b instead of x W^T + b.
    square = reference.Network((3, 3), ("identity",), "mse")
    params = reference.init_params(square, seed=9)
    assert not np.allclose(params[0][0], params[0][0].T)
    untransposed = [{"kernel": weight, "bias": bias} for weight, bias in params]
    with jax.enable_x64(True):
        _, wrong = _forward_pass(square.activations, untransposed, x)
    expected = reference.forward(square, params, x)
    assert reference.relative_error(np.asarray(wrong), expected) > 1e-2
    adapter_output = JaxAdapter("float64").forward(square, params, x)
    assert reference.relative_error(adapter_output, expected) <= FLOAT64_TOLERANCE


def test_divergence_relu_derivative_at_zero_is_zero(float64_adapter):
    assert float(jax.grad(jax.nn.relu)(0.0)) == 0.0  # JAX's convention, and ours
    network = reference.Network((2, 2, 1), ("relu", "identity"), "mse")
    params = [(np.array([[1.0, -1.0], [0.5, 0.25]]), np.array([0.0, 0.1])), (np.array([[0.7, -0.4]]), np.array([0.2]))]
    x, y = np.array([[0.3, 0.3]]), np.array([[1.5]])
    assert (x @ params[0][0].T + params[0][1])[0, 0] == 0.0  # hidden unit 0 sits exactly on the kink
    value, grads = float64_adapter.loss_and_gradients(network, params, x, y)
    expected_value, expected_grads = reference.loss_and_gradients(network, params, x, y)
    # The error reaching unit 0, dJ/da_1[0] = 2 (a_2 - y) W2[0, 0], is not zero: with relu'(0) = 1
    # its row of dW1 would not be zero either.
    upstream = 2 * (reference.forward(network, params, x) - y) * params[1][0][0, 0]
    assert abs(upstream.item()) > 0.5
    assert np.all(grads[0][0][0] == 0.0) and grads[0][1][0] == 0.0
    assert reference.relative_error(value, expected_value) <= FLOAT64_TOLERANCE
    assert_params_close(grads, expected_grads, FLOAT64_TOLERANCE, "gradients at relu's kink")


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", FLOAT64_TOLERANCE), ("float32", 1e-6)])
def test_divergence_bce_on_logits_does_not_clamp(dtype, tolerance):
    # torch.nn.BCELoss works on sigmoid(40), which rounds to 1, and clamps log(0) at -100; optax's
    # sigmoid_binary_cross_entropy works on the logit (log_sigmoid), so it keeps the exact math.
    network = reference.Network((1, 1), ("sigmoid",), "bce")
    params = [(np.array([[40.0]]), np.array([0.0]))]
    x, y = np.array([[1.0]]), np.array([[0.0]])
    value, grads = JaxAdapter(dtype).loss_and_gradients(network, params, x, y)
    expected_value, expected_grads = reference.loss_and_gradients(network, params, x, y)
    assert reference.relative_error(value, 40.0) <= tolerance  # softplus(40) = 40 + 4e-18
    assert reference.relative_error(grads[0][0], np.array([[1.0]])) <= tolerance  # sigmoid(40) - 0
    assert reference.relative_error(value, expected_value) <= tolerance
    assert_params_close(grads, expected_grads, tolerance, "saturated bce gradients")


@pytest.mark.parametrize("callers_x64", [False, True])
def test_x64_is_scoped_to_each_call(callers_x64):
    process_default = jax.config.jax_enable_x64
    network, params, x, y, _ = _document_case("001")
    with jax.enable_x64(callers_x64):  # the caller's own setting, whatever it is
        _, grads64 = JaxAdapter("float64").loss_and_gradients(network, params, x, y)
        _, grads32 = JaxAdapter("float32").loss_and_gradients(network, params, x, y)
        assert grads64[0][0].dtype == np.float64  # x64 was on inside the float64 call
        assert grads32[0][0].dtype == np.float32  # and off (or irrelevant) inside the float32 one
        assert jax.config.jax_enable_x64 is callers_x64
        callers_array = jnp.asarray(np.ones(3, dtype=np.float64)) * 2.0
        assert callers_array.dtype == (jnp.float64 if callers_x64 else jnp.float32)
    assert jax.config.jax_enable_x64 is process_default  # the global setting, untouched
    assert jnp.ones(3).dtype == (jnp.float64 if process_default else jnp.float32)


def test_matmul_precision_is_applied_inside_calls():
    # On a CPU the precision changes no number, so we check what JAX hands XLA: the precision
    # attribute of every dot_general in the traced loss_and_gradients, and the caller's setting.
    network, params, x, y = _random_case("mse", "mean", True, "tanh", "identity")
    before = jax.config.jax_default_matmul_precision
    text = JaxAdapter("float32").jaxpr(network, params, x, y)
    dot_products = text.count("dot_general[")
    assert dot_products >= 3
    assert text.count("precision=(Precision.HIGHEST, Precision.HIGHEST)") == dot_products
    assert "Precision.HIGHEST" not in JaxAdapter("float32", matmul_precision="default").jaxpr(network, params, x, y)
    JaxAdapter("float32").loss_and_gradients(network, params, x, y)
    assert jax.config.jax_default_matmul_precision == before


# ---------------------------------------------------------------- the boundary


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "double", "f8"])
def test_bad_dtype_raises_value_error_naming_it(dtype):
    with pytest.raises(ValueError, match=f"dtype='{dtype}'"):
        JaxAdapter(dtype)


def test_bad_matmul_precision_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="'fastest'"):
        JaxAdapter(matmul_precision="fastest")


def test_inputs_are_never_modified(float64_adapter):
    example = reference.seeds.example("002")
    arguments = (example.params, example.x, example.y, example.batches)
    before = copy.deepcopy(arguments)
    params, x, y, batches = arguments
    float64_adapter.forward(example.network, params, x)
    float64_adapter.loss_and_gradients(example.network, params, x, y)
    float64_adapter.sgd_step(example.network, params, x, y, 0.5)
    float64_adapter.train(example.network, params, x, y, batches, 0.5)
    for (weight, bias), (weight_before, bias_before) in zip(params, before[0]):
        assert np.array_equal(weight, weight_before) and np.array_equal(bias, bias_before)
    assert np.array_equal(x, before[1]) and np.array_equal(y, before[2])
    assert all(np.array_equal(batch, batch_before) for batch, batch_before in zip(batches, before[3]))


def test_results_are_numpy_in_our_layout(float32_adapter):
    network, params, x, y, learning_rate = _document_case("001")
    value, grads = float32_adapter.loss_and_gradients(network, params, x, y)
    assert isinstance(value, float)
    for (weight, bias), (d_weight, d_bias) in zip(params, grads):
        assert type(d_weight) is np.ndarray and d_weight.shape == weight.shape
        assert type(d_bias) is np.ndarray and d_bias.shape == bias.shape
        assert d_weight.dtype == np.float32 and d_weight.flags.writeable
    trajectory = float32_adapter.train(network, params, x, y, [np.array([0, 1]), np.array([1])], learning_rate)
    assert all(type(weight) is np.ndarray for weight, _ in trajectory.params)


def test_importing_the_module_does_not_import_jax():
    code = "import sys, adapters.jax_adapter; assert 'jax' not in sys.modules and 'optax' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_missing_jax_makes_the_adapter_unavailable(monkeypatch):
    def no_optax(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", no_optax)
    with pytest.raises(AdapterUnavailable, match=r"pip install 'backprop-conformance\[jax\]'"):
        JaxAdapter()


def test_load_adapter_jax_float32_works():
    adapter = load_adapter("jax-float32")
    assert isinstance(adapter, Adapter)
    assert adapter.dtype == "float32" and adapter.name == "jax"
    assert all(adapter.supports(method) for method in ("forward", "sgd_step", "train"))
    network, params, x, y, learning_rate = _document_case("001")
    _, grads = adapter.loss_and_gradients(network, params, x, y)
    _, expected = reference.loss_and_gradients(network, params, x, y)
    assert_params_close(grads, expected, FLOAT32_TOLERANCE, "load_adapter('jax-float32') gradients")
    trajectory = adapter.train(network, params, x, y, [np.array([0, 1]), np.array([0])], learning_rate)
    assert trajectory.losses.shape == (2,)
