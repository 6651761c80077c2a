"""``backprop bench``, and the proof that the reference's speed work changed no result.

The fast reference is compared bit for bit with a straightforward
reimplementation of the same equations (the reference as it was written
before it was tuned): the tuning reorders no arithmetic, it only avoids
allocations and recomputation, so anything but exact equality is a bug.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.bench import peaks, plan, suite_speed
from backprop_conformance.cli import main
from backprop_conformance.reference import Network
from backprop_conformance.reference.activations import ACTIVATION_FUNCTIONS
from backprop_conformance.reference.backprop import Workspace, _backprop, _forward, _loss, _loss_and_gradients
from backprop_conformance.reference.losses import log_softmax, normaliser, one_hot, softplus
from backprop_conformance.reference.training import _sgd_update, _sgd_update_in_place, _train_step

# -- the straightforward reference: one new array per operation, f'(z) from z -------------


def _plain_sigmoid(z):
    sign = np.where(np.real(z) >= 0, 1.0, -1.0)
    t = np.exp(-sign * z)
    return np.where(sign > 0, 1.0, t) / (1.0 + t)


def _plain_sech_squared(z):
    t = np.exp(-2.0 * np.where(np.real(z) >= 0, 1.0, -1.0) * z)
    return 4.0 * t / (1.0 + t) ** 2


PLAIN_ACTIVATIONS = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (_plain_sigmoid, lambda z: _plain_sigmoid(z) * _plain_sigmoid(-z)),
    "tanh": (np.tanh, lambda z: _plain_sech_squared(z)),
    "relu": (lambda z: np.where(np.real(z) > 0, z, 0.0), lambda z: np.where(np.real(z) > 0, 1.0, 0.0)),
}


def plain_forward(network, params, x):
    zs, activations = [], [x]
    for (weight, bias), name in zip(params, network.activations):
        z = activations[-1] @ weight.T
        if bias is not None:
            z = z + bias
        zs.append(z)
        activations.append(PLAIN_ACTIVATIONS[name][0](z))
    return zs, activations


def plain_loss_terms(network, z, a, y):
    """Return the summed loss and dJ/dz_L times the normaliser."""
    if network.loss == "mse":
        return np.sum((a - y) ** 2), 2.0 * (a - y) * PLAIN_ACTIVATIONS[network.activations[-1]][1](z)
    if network.loss_name in ("bce", "bce_with_logits"):
        value = np.sum((1.0 - y) * softplus(z) + y * softplus(-z))
        return value, (1.0 - y) * _plain_sigmoid(z) - y * _plain_sigmoid(-z)
    value = -np.sum(np.take_along_axis(log_softmax(z), y[:, None], axis=1))
    return value, np.exp(log_softmax(z)) - one_hot(y, z.shape[1])


def plain_loss_and_gradients(network, params, x, y):
    zs, activations = plain_forward(network, params, x)
    n = normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    value, delta = plain_loss_terms(network, zs[-1], activations[-1], y)
    delta = delta / n
    grads = [None] * network.depth
    for index in reversed(range(network.depth)):
        weight, bias = params[index]
        grads[index] = (delta.T @ activations[index], None if bias is None else delta.sum(axis=0))
        if index > 0:
            delta = (delta @ weight) * PLAIN_ACTIVATIONS[network.activations[index - 1]][1](zs[index - 1])
    return float(value / n), grads


def plain_sgd_update(params, grads, learning_rate):
    return [
        (weight - learning_rate * d_weight, None if bias is None else bias - learning_rate * d_bias)
        for (weight, bias), (d_weight, d_bias) in zip(params, grads)
    ]


# -- problems: every activation and loss, exact zeros, and arrays of more than a few pages --


def _problem(sizes, activations, loss, m, bias=True, reduction="mean", scale=1.0, seed=0):
    network = Network(sizes, activations, loss, bias=bias, reduction=reduction)
    rng = np.random.default_rng(seed)
    params = []
    for weight, b in reference.init_params(network, seed=seed):
        weight = weight * scale
        weight[0, :] = 0.0  # a dead unit: z exactly 0, where relu'(0) = 0 decides
        params.append((weight, None if b is None else np.where(np.arange(b.size) == 0, 0.0, b * scale)))
    x = rng.uniform(-2.0, 2.0, (m, sizes[0]))
    x[0, 0] = -0.0
    if loss == "cross_entropy":
        y = rng.integers(0, sizes[-1], m)
    elif loss in ("bce", "bce_with_logits"):
        y = np.where(rng.random((m, sizes[-1])) < 0.5, 1.0, rng.random((m, sizes[-1])))
    else:
        y = rng.uniform(-1.0, 1.0, (m, sizes[-1]))
    return network, params, x, y


PROBLEMS = {
    "000 2-3-1 sigmoid bce": _problem((2, 3, 1), ("sigmoid", "sigmoid"), "bce", 4, bias=False),
    "4-2-2-1 sigmoid mse": _problem((4, 2, 2, 1), "sigmoid", "mse", 5),
    "tanh/relu/identity mse sum": _problem((3, 5, 4, 2), ("tanh", "relu", "identity"), "mse", 6, reduction="sum"),
    "relu/tanh/sigmoid mse, saturated": _problem((3, 6, 6, 2), ("relu", "tanh", "sigmoid"), "mse", 4, scale=8.0),
    "identity/sigmoid cross_entropy": _problem((4, 3, 3), ("sigmoid", "identity"), "cross_entropy", 5),
    # (300, 300) float64 arrays are 720 KB: large blocks, which the allocator maps apart (mmap).
    "wide relu cross_entropy": _problem((40, 300, 300, 10), ("relu", "relu", "identity"), "cross_entropy", 300),
    "wide tanh/sigmoid mse": _problem((20, 300, 300, 3), ("tanh", "sigmoid", "identity"), "mse", 300, bias=False),
}


def _assert_same_params(actual, expected, what):
    __tracebackhide__ = True
    assert len(actual) == len(expected), f"{what}: {len(actual)} layers, expected {len(expected)}"
    for layer, ((weight, bias), (want_weight, want_bias)) in enumerate(zip(actual, expected), start=1):
        assert weight.dtype == np.float64, f"{what}: W{layer} is {weight.dtype}"
        np.testing.assert_array_equal(weight, want_weight, err_msg=f"{what}: W{layer} differs")
        assert (bias is None) == (want_bias is None), f"{what}: b{layer} presence differs"
        if bias is not None:
            np.testing.assert_array_equal(bias, want_bias, err_msg=f"{what}: b{layer} differs")


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_the_fast_reference_equals_the_straightforward_one_bit_for_bit(problem):
    network, params, x, y = PROBLEMS[problem]
    zs, activations = _forward(network, params, x)
    plain_zs, plain_activations = plain_forward(network, params, x)
    for layer, (z, plain) in enumerate(zip(zs, plain_zs), start=1):
        np.testing.assert_array_equal(z, plain, err_msg=f"z{layer} differs")
    for layer, (a, plain) in enumerate(zip(activations, plain_activations)):
        np.testing.assert_array_equal(a, plain, err_msg=f"a{layer} differs")
    value, grads = _loss_and_gradients(network, params, x, y)
    plain_value, plain_grads = plain_loss_and_gradients(network, params, x, y)
    assert value == plain_value
    _assert_same_params(grads, plain_grads, "gradients")
    stepped = reference.sgd_step(network, params, x, y, 0.3)
    _assert_same_params(stepped, plain_sgd_update(params, plain_grads, 0.3), "sgd_step")


@pytest.mark.parametrize("problem", ["4-2-2-1 sigmoid mse", "wide relu cross_entropy"])
def test_train_equals_straightforward_gradient_descent(problem):
    network, params, x, y = PROBLEMS[problem]
    batches = reference.batch_schedule(len(x), 3 if len(x) < 10 else 128, epochs=2, seed=1)
    expected_params, expected_losses = params, []
    for batch in batches:
        value, grads = plain_loss_and_gradients(network, expected_params, x[batch], y[batch])
        expected_losses.append(value)
        expected_params = plain_sgd_update(expected_params, grads, 0.05)
    trajectory = reference.train(network, params, x, y, batches, 0.05)
    np.testing.assert_array_equal(trajectory.losses, expected_losses)
    _assert_same_params(trajectory.params, expected_params, "train")


def _workspace_arrays(workspace):
    pairs = [pair for pair in workspace.grads]
    return [a for a in [*workspace.zs, *workspace.activations, *workspace.deltas] if a is not None] + [
        a for pair in pairs for a in pair if a is not None
    ]


@pytest.mark.parametrize("problem", PROBLEMS, ids=str)
def test_a_train_step_into_the_last_steps_workspace_changes_no_bit_and_allocates_no_layer_array(problem):
    network, params, x, y = PROBLEMS[problem]
    owned = [(w.copy(), None if b is None else b.copy()) for w, b in params]
    expected_params = params
    workspace = None
    for step in range(3):
        plain_value, plain_grads = plain_loss_and_gradients(network, expected_params, x, y)
        expected_params = plain_sgd_update(expected_params, plain_grads, 0.05)
        value, arrays = _train_step(network, owned, x, y, 0.05, workspace)
        assert value == plain_value, f"step {step}: J differs"
        _assert_same_params(owned, expected_params, f"step {step}")
        if workspace is not None:  # every array of the step is the last step's, overwritten
            reused = {id(array) for array in _workspace_arrays(workspace)}
            fresh = [array.shape for array in _workspace_arrays(arrays) if id(array) not in reused]
            assert not fresh, f"step {step} allocated arrays of shapes {fresh} instead of reusing its workspace"
        workspace = arrays


def test_a_workspace_holds_every_layer_array_of_the_pass():
    network, params, x, y = PROBLEMS["tanh/relu/identity mse sum"]
    _, arrays = _backprop(network, params, x, y)
    assert isinstance(arrays, Workspace)
    zs, activations = plain_forward(network, params, x)
    assert [z.shape for z in arrays.zs] == [z.shape for z in zs]
    assert [a.shape for a in arrays.activations] == [a.shape for a in activations[1:]]
    assert arrays.activations[-1] is arrays.zs[-1], "the identity's output is z itself, not a copy"
    assert [d is None for d in arrays.deltas] == [False] * (network.depth - 1) + [True]
    empty = Workspace.empty(network.depth)
    assert all(array is None for array in [*empty.zs, *empty.activations, *empty.deltas])
    assert all(pair == (None, None) for pair in empty.grads)


@pytest.mark.parametrize(
    "problem", ["tanh/relu/identity mse sum", "identity/sigmoid cross_entropy", "000 2-3-1 sigmoid bce"]
)
def test_the_complex_step_path_is_unchanged(problem):
    """``_loss`` still takes complex params (the complex-step oracle) and computes what the plain code does."""
    network, params, x, y = PROBLEMS[problem]
    shifted = [(w.astype(np.complex128), None if b is None else b.astype(np.complex128)) for w, b in params]
    shifted[-1][0][0, 0] += 1e-30j
    zs, activations = plain_forward(network, shifted, x)
    n = normaliser(network.loss, network.reduction, x.shape[0], network.sizes[-1])
    expected = plain_loss_terms(network, zs[-1], activations[-1], y)[0] / n
    actual = _loss(network, shifted, x, y)
    assert np.iscomplexobj(actual)
    assert actual == expected


@pytest.mark.parametrize("name", sorted(ACTIVATION_FUNCTIONS))
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_the_derivative_given_the_output_is_the_derivative_from_z(name, dtype):
    z = np.array([-40.0, -3.0, -0.5, -0.0, 0.0, 1e-300, 0.5, 3.0, 40.0], dtype=dtype)
    if dtype is np.complex128:
        z = z + 1e-30j
    activation = ACTIVATION_FUNCTIONS[name]
    from_output = activation.derivative(z, activation.function(z))
    # A product with either is the same product (a relu mask is bool: True, False are 1.0, 0.0).
    upstream = np.linspace(-2.0, 2.0, z.size).astype(dtype)
    np.testing.assert_array_equal(upstream * from_output, upstream * activation.derivative(z))


def test_the_updates_agree_and_sgd_update_touches_nothing_it_is_given():
    network, params, x, y = PROBLEMS["wide tanh/sigmoid mse"]
    _, grads = _loss_and_gradients(network, params, x, y)
    before = [array.copy() for pair in params + grads for array in pair if array is not None]
    updated = _sgd_update(params, grads, 0.25)
    after = [array for pair in params + grads for array in pair if array is not None]
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new, err_msg="_sgd_update modified its arguments")
    _assert_same_params(updated, plain_sgd_update(params, grads, 0.25), "_sgd_update")
    owned = [(w.copy(), None if b is None else b.copy()) for w, b in params]
    owned_grads = [(w.copy(), None if b is None else b.copy()) for w, b in grads]
    _assert_same_params(_sgd_update_in_place(owned, owned_grads, 0.25), updated, "_sgd_update_in_place")


# -- the bench command ------------------------------------------------------------------------


def test_step_flops_counts_forward_weight_and_delta_products():
    # 2-3-1 at batch 4: forward 4 (6 + 3), dW 4 (6 + 3), delta 4 * 3 (second layer only); 2 flops each.
    assert plan.step_flops(Network((2, 3, 1), "sigmoid", "mse"), 4) == 2 * 4 * (2 * 9 + 3)


def test_every_bench_implementation_takes_the_reference_step(tmp_path):
    """A benchmark of a wrong step is worthless: each implementation's first step matches sgd_step."""
    size = plan.SIZES[2]  # 4-2-2-1 at batch 16
    params, x, y = plan.bench_data(size)
    for implementation in plan.IMPLEMENTATIONS:
        if plan.framework_available(implementation.family) is not None:
            continue
        expected = plan.expected_params(implementation, size.network, params, x, y)
        stepper = implementation.build(size.network, params, x, y, plan.LEARNING_RATE)
        stepper.steps(1)
        bound = 1e-13 if implementation.dtype == "float64" else 1e-5
        error = reference.worst_relative_error(stepper.params(), expected)
        assert error <= bound, f"{implementation.name}: relative error {error:.2e} after one step"


def test_bench_quick_writes_markdown_and_json(tmp_path, capsys):
    out = tmp_path / "reports"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    markdown = (out / "performance.md").read_text(encoding="utf-8")
    document = json.loads((out / "performance.json").read_text(encoding="utf-8"))

    command = f"backprop bench --out {out} --quick"
    assert markdown.splitlines()[0].startswith(f"_Generated by `{command}`")
    assert document["command"] == command
    for heading in (
        "## Targets", "## Ratios: reference float64 / framework float64", "## Step times (ms)",
        "## A step's matmuls alone", "## Achieved GFLOP/s", "## Peak memory", "## Conformance suite throughput",
        "## How it was measured",
    ):
        assert heading in markdown, f"performance.md lacks {heading!r}"

    assert document["environment"]["versions"]["numpy"] == np.__version__
    assert {"cpu_count", "numpy_openblas"} <= set(document["environment"]["threads"])
    assert document["matmul_peak"]["numpy_float64"]["best_gflops"] > 0
    assert document["matmuls"]["sizes"][0]["libraries"]["numpy"]["median"] > 0
    (size,) = document["sizes"]
    assert size["name"] == "2-3-1, batch 1"
    assert size["flops_per_step"] == plan.step_flops(plan.SIZES[0].network, 1)
    results = size["implementations"]
    assert {"reference sgd_step", "reference train step"} <= set(results)
    for name, result in results.items():
        assert len(result["samples"]) == document["repeats"] == plan.QUICK_REPEATS
        assert result["q1"] <= result["median"] <= result["q3"]
        assert result["agreement_after_one_step"] <= (1e-13 if result["dtype"] == "float64" else 1e-5), name
    assert all(result["threads"] == "default" for result in results.values()), "--quick runs default threads only"
    assert results["reference sgd_step"]["traced_step_peak_bytes"] > 0
    growths = [result["peak_rss_growth_bytes"] for result in results.values()]
    assert all(growth is None or growth >= 0 for growth in growths)
    assert size["errors"] == {}
    if "torch eager float64" in results:
        assert size["ratios"]["default"]["fastest_float64_framework"] in results
        (target,) = document["targets"]
        assert target["against"] == "torch eager float64" and target["target"] == "< 1x"
        assert "| 2-3-1, batch 1 | reference sgd_step | torch eager float64 | < 1x |" in markdown
    assert document["suite"] is None
    assert "wrote" in capsys.readouterr().out


def test_the_suite_throughput_counts_every_case_in_both_passes():
    result = suite_speed.suite_throughput(3, specs=("reference",))
    assert result["adapters"] == ["reference float64"]
    assert result["warm_up_seconds"] > 0
    for name in ("first", "repeated"):
        one_pass = result[name]
        assert one_pass["cases"] == 3, name
        assert sum(one_pass["outcomes"]["reference float64"].values()) == 3, name
        assert one_pass["outcomes"]["reference float64"]["error"] == 0, name
        assert one_pass["cases_per_second"] > 0, name


def test_where_the_environment_pins_openblas_kernels_the_train_step_is_also_timed_on_openblass_own(
    tmp_path, monkeypatch
):
    """OPENBLAS_CORETYPE set: an extra worker runs without it, and the report says which kernels each ran."""
    from backprop_conformance.common.machine import openblas

    if openblas() is None:
        pytest.skip("NumPy does not use OpenBLAS here: nothing to pin")
    # Pinning the kernels this process runs already keeps this safe on any CPU.
    monkeypatch.setenv(plan.CORETYPE_VARIABLE, os.environ.get(plan.CORETYPE_VARIABLE, openblas()["architecture"]))
    assert peaks.blas_pinned()
    out = tmp_path / "reports"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    document = json.loads((out / "performance.json").read_text(encoding="utf-8"))
    (size,) = document["sizes"]
    name = plan.REFERENCE_TRAIN + plan.OWN_KERNELS
    assert name in size["implementations"]
    assert size["implementations"][name]["own_kernels"] is True
    kernels = document["environment"]["openblas_kernels_by_implementation"]
    assert kernels[plan.REFERENCE_TRAIN] and kernels[name], kernels
    assert "numpy_float64" + plan.OWN_KERNELS in document["matmul_peak"]
    markdown = (out / "performance.md").read_text(encoding="utf-8")
    assert f"this environment sets {plan.CORETYPE_VARIABLE}=" in markdown


def test_without_a_pin_no_extra_worker_runs(tmp_path, monkeypatch):
    monkeypatch.delenv(plan.CORETYPE_VARIABLE, raising=False)
    assert not peaks.blas_pinned()
    out = tmp_path / "reports"
    assert main(["bench", "--quick", "--out", str(out)]) == 0
    document = json.loads((out / "performance.json").read_text(encoding="utf-8"))
    (size,) = document["sizes"]
    assert plan.REFERENCE_TRAIN + plan.OWN_KERNELS not in size["implementations"]
    assert not any(key.endswith(plan.OWN_KERNELS) for key in document["matmul_peak"])
