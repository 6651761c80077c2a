"""TorchAdapter against the reference: gradients, updates, training, and torch's known divergences.

Agreement is judged by norm-wise relative error (``reference.relative_error``),
never by exact float equality; exact comparisons below check non-mutation,
structural zeros and torch's documented constants only.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.adapters import Adapter, AdapterUnavailable, load_adapter
from backprop_conformance.adapters.torch_adapter import TorchAdapter
from backprop_conformance.reference import Network, Params, init_params, relative_error
from backprop_conformance.reference.conventions import (
    REDUCTIONS,
    TORCH_BCE_LOG_CLAMP,
)
from backprop_conformance.reference.seeds import example
from backprop_conformance.reference.specs import base
from tests.combinations import LOSSES_TESTED, hidden_output_pairs

torch = pytest.importorskip("torch")

#: float64 torch and the float64 reference differ by rounding only.
FLOAT64_BOUND = 1e-12
#: TODO(tolerances): use suite.tolerances
FLOAT32_BOUND = 1e-4
#: The floor of p (1 - p) in torch's BCELoss backward: ``constexpr float EPSILON = 1e-12`` in
#: aten/src/ATen/native/Loss.cpp, a float32 constant even for float64 (9.99999996e-13).
TORCH_BCE_BACKWARD_EPSILON = float(np.float32(1e-12))


@dataclass(frozen=True)
class Case:
    """A network with params, one batch of data and a learning rate."""

    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    learning_rate: float


def _random_data(network: Network, seed: int, n_samples: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Return seeded (x, y): normal inputs; targets in [0, 1] for bce, class labels for cross_entropy."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_samples, network.sizes[0]))
    n_out = network.sizes[-1]
    if network.loss_name == "cross_entropy":
        return x, rng.integers(0, n_out, size=n_samples)
    if network.loss_name in ("bce", "bce_with_logits"):
        return x, rng.uniform(0.0, 1.0, size=(n_samples, n_out))
    return x, rng.normal(size=(n_samples, n_out))


def _every_combination() -> list[Network]:
    """Return a 3-5-4-k network for every hidden activation x output activation x loss x reduction x bias.

    The output activation is the one the loss requires (sigmoid for bce,
    identity for cross_entropy), or any of the four for mse.
    """
    networks = []
    for loss in LOSSES_TESTED:
        n_out = 3 if base(loss) == "cross_entropy" else 2
        pairs = hidden_output_pairs(loss)
        for (hidden, output), reduction, bias in itertools.product(pairs, REDUCTIONS, (True, False)):
            networks.append(Network((3, 5, 4, n_out), (hidden, hidden, output), loss, bias, reduction))
    return networks


def _random_case(network: Network, seed: int) -> Callable[[], Case]:
    def build() -> Case:
        x, y = _random_data(network, seed)
        return Case(network, init_params(network, seed), x, y, learning_rate=0.5)

    return build


def _document_case(key: str) -> Callable[[], Case]:
    def build() -> Case:
        document = example(key)
        return Case(document.network, document.params, document.x, document.y, document.learning_rate)

    return build


CASES: dict[str, Callable[[], Case]] = {f"document {key}": _document_case(key) for key in ("000", "001", "002")}
CASES.update(
    {network.describe(): _random_case(network, seed) for seed, network in enumerate(_every_combination())}
)


def _assert_params_close(actual: Params, expected: Params, bound: float, what: str) -> None:
    """Assert every array of ``actual`` is within ``bound`` norm-wise relative error of ``expected``."""
    __tracebackhide__ = True
    assert len(actual) == len(expected), f"{what}: {len(actual)} layers, the reference has {len(expected)}"
    for layer, (actual_pair, expected_pair) in enumerate(zip(actual, expected), start=1):
        for kind, got, wanted in zip("Wb", actual_pair, expected_pair):
            name = f"{what} {kind}{layer}"
            if wanted is None:
                assert got is None, f"{name} should be None (the network has no biases), got {got!r}"
                continue
            assert got.shape == wanted.shape, f"{name} has shape {got.shape}, the reference {wanted.shape}"
            error = relative_error(got, wanted)
            assert error <= bound, (
                f"{name}: relative error {error:.2e} > allowed {bound:.0e}\n"
                f"torch     = {np.array2string(np.asarray(got, dtype=np.float64), precision=17)}\n"
                f"reference = {np.array2string(wanted, precision=17)}"
            )


def _assert_loss_close(actual: float, expected: float, bound: float) -> None:
    __tracebackhide__ = True
    error = relative_error(actual, expected)
    assert error <= bound, f"loss: torch {actual!r}, reference {expected!r}, relative error {error:.2e} > {bound:.0e}"


def _assert_steps_close(
    stepped: Params, expected: Params, params: Params, bound: float, dtype: str, what: str
) -> None:
    """Assert the steps ``stepped - params`` match the reference's ``expected - params``.

    The updated values are dominated by the old ones, so comparing them alone would
    hide a wrong step. Recovering a step from stored values costs the rounding of
    the old and new values to ``dtype``, about eps |theta| each, which is allowed on
    top of the relative ``bound``: ``|step - wanted| <= bound |wanted| + 2 eps |theta|``.
    """
    __tracebackhide__ = True
    eps = float(np.finfo(dtype).eps)
    for layer, (new_pair, wanted_pair, old_pair) in enumerate(zip(stepped, expected, params), start=1):
        for kind, new, wanted, old in zip("Wb", new_pair, wanted_pair, old_pair):
            if old is None:
                continue
            difference = float(np.linalg.norm((new - old) - (wanted - old)))
            allowed = bound * float(np.linalg.norm(wanted - old)) + 2 * eps * float(np.linalg.norm(old))
            assert difference <= allowed, (
                f"{what} {kind}{layer}: step differs from the reference step by {difference:.2e} "
                f"> allowed {allowed:.2e} (step norm {np.linalg.norm(wanted - old):.2e})"
            )


@pytest.fixture(scope="module")
def torch64() -> TorchAdapter:
    return TorchAdapter(dtype="float64")


@pytest.fixture(scope="module")
def torch32() -> TorchAdapter:
    return TorchAdapter(dtype="float32")


@pytest.fixture
def caller_precision():
    """Yield after setting the caller's float32 matmul precision to "highest"; restore it after."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield "highest"
    torch.set_float32_matmul_precision(previous)


# -- 1 and 2: loss, gradients and one sgd step, every combination ----------------------------


def _check_against_reference(adapter: TorchAdapter, case: Case, bound: float) -> None:
    __tracebackhide__ = True
    network, params, x, y, rate = case.network, case.params, case.x, case.y, case.learning_rate
    loss, grads = adapter.loss_and_gradients(network, params, x, y)
    expected_loss, expected_grads = reference.loss_and_gradients(network, params, x, y)
    _assert_loss_close(loss, expected_loss, bound)
    _assert_params_close(grads, expected_grads, bound, f"{adapter.dtype} gradient")
    stepped = adapter.sgd_step(network, params, x, y, rate)
    expected = reference.sgd_step(network, params, x, y, rate)
    _assert_params_close(stepped, expected, bound, f"{adapter.dtype} sgd_step params")
    _assert_steps_close(stepped, expected, params, bound, adapter.dtype, f"{adapter.dtype} sgd_step")


@pytest.mark.parametrize("case_id", list(CASES))
def test_float64_loss_gradients_and_sgd_step_match_the_reference(case_id, torch64):
    _check_against_reference(torch64, CASES[case_id](), FLOAT64_BOUND)


@pytest.mark.parametrize("case_id", list(CASES))
def test_float32_loss_gradients_and_sgd_step_match_the_reference(case_id, torch32):
    # TODO(tolerances): use suite.tolerances
    _check_against_reference(torch32, CASES[case_id](), FLOAT32_BOUND)


@pytest.mark.parametrize("case_id", ["document 000", "document 001", "document 002", *list(CASES)[3::17]])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_forward_matches_the_reference(case_id, dtype):
    case = CASES[case_id]()
    output = TorchAdapter(dtype=dtype).forward(case.network, case.params, case.x)
    assert output.dtype == np.dtype(dtype)
    bound = FLOAT64_BOUND if dtype == "float64" else FLOAT32_BOUND  # TODO(tolerances): use suite.tolerances
    error = relative_error(output, reference.forward(case.network, case.params, case.x))
    assert error <= bound, f"forward output relative error {error:.2e} > {bound:.0e}"


# -- 3: training over an explicit schedule -------------------------------------------------------


@pytest.mark.parametrize(
    "network",
    [
        Network((3, 4, 2), ("tanh", "identity"), "mse"),
        Network((3, 4, 2), ("relu", "sigmoid"), "bce", reduction="sum"),
        Network((3, 4, 3), ("sigmoid", "identity"), "cross_entropy", bias=False),
    ],
    ids=Network.describe,
)
def test_train_follows_the_schedule_like_the_reference(network, torch64):
    batches = reference.batch_schedule(n_samples=10, batch_size=4, epochs=3, seed=0)
    assert [len(batch) for batch in batches] == [4, 4, 2] * 3  # the last batch of each epoch is partial
    x, y = _random_data(network, seed=3, n_samples=10)
    params = init_params(network, seed=3)
    trajectory = torch64.train(network, params, x, y, batches, learning_rate=0.3)
    expected = reference.train(network, params, x, y, batches, learning_rate=0.3)
    assert trajectory.losses.dtype == np.float64 and trajectory.losses.shape == (9,)
    error = relative_error(trajectory.losses, expected.losses)
    assert error <= FLOAT64_BOUND, f"per-iteration losses: relative error {error:.2e}"
    _assert_params_close(trajectory.params, expected.params, FLOAT64_BOUND, "final params")


@pytest.mark.parametrize("key", ["000", "001", "002"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_train_on_the_documents_schedules_matches_the_reference(key, dtype):
    document = example(key)
    arguments = (document.network, document.params, document.x, document.y, document.batches, document.learning_rate)
    trajectory = TorchAdapter(dtype=dtype).train(*arguments)
    expected = reference.train(*arguments)
    bound = FLOAT64_BOUND if dtype == "float64" else FLOAT32_BOUND  # TODO(tolerances): use suite.tolerances
    assert relative_error(trajectory.losses, expected.losses) <= bound
    _assert_params_close(trajectory.params, expected.params, bound, f"{dtype} final params")


# -- 4: known divergences, each demonstrated -------------------------------------------------------


def test_relu_derivative_at_zero_is_zero_in_torch_as_in_the_reference(torch64):
    network = Network((3, 4, 2), ("relu", "identity"), "mse")
    weight_1, bias_1 = np.random.default_rng(4).normal(size=(4, 3)), np.random.default_rng(5).normal(size=4)
    weight_1[0], bias_1[0] = 0.0, 0.0  # hidden unit 0 has z = 0 exactly, for every sample
    params = [(weight_1, bias_1), *init_params(network, seed=6)[1:]]
    x, y = _random_data(network, seed=7)
    _, grads = torch64.loss_and_gradients(network, params, x, y)
    _, expected = reference.loss_and_gradients(network, params, x, y)
    # dJ/da_1 at unit 0 is not zero, so relu'(0) = 1 would give unit 0's weights a gradient...
    weight_2, bias_2 = params[1]
    output = np.maximum(x @ weight_1.T + bias_1, 0.0) @ weight_2.T + bias_2  # identity output layer
    error_at_unit_0 = ((2 * (output - y) / y.size) @ weight_2)[:, 0]  # mse mean: delta_2 = 2 (a - y) / N
    assert np.abs(error_at_unit_0).sum() > 1e-3
    # ...but torch's nn.ReLU passes back 0 there: an exact zero (a product with 0), as in the reference.
    assert np.all(grads[0][0][0] == 0.0) and grads[0][1][0] == 0.0
    _assert_params_close(grads, expected, FLOAT64_BOUND, "gradient with a pre-activation at 0")


def _one_sigmoid_unit(z: float, target: float) -> tuple[Network, Params, np.ndarray, np.ndarray]:
    """Return a 1-1 sigmoid bce network with weight z and input 1, so the pre-activation is z."""
    network = Network((1, 1), ("sigmoid",), "bce", bias=False)
    return network, [(np.array([[z]]), None)], np.array([[1.0]]), np.array([[target]])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_loss_is_clamped_at_100_where_sigmoid_rounds_to_1(dtype):
    network, params, x, y = _one_sigmoid_unit(z=40.0, target=0.0)
    adapter = TorchAdapter(dtype=dtype)
    assert adapter.forward(network, params, x)[0, 0] == 1.0  # sigmoid(40) rounds to exactly 1
    loss, _ = adapter.loss_and_gradients(network, params, x, y)
    # torch: -log(1 - 1) = -log(0) is clamped to -TORCH_BCE_LOG_CLAMP = 100, exactly.
    assert loss == -TORCH_BCE_LOG_CLAMP
    # The exact loss softplus(z) - y z = 40 + log1p(e^-40) is about z.
    assert relative_error(reference.loss(network, params, x, y), 40.0) < 1e-15


def test_bce_loss_is_clamped_at_100_where_log_sigmoid_is_below_minus_100_in_float64(torch64):
    # sigmoid(-104) = 6.8e-46 is a normal float64, yet log of it, -104, is clamped to -100.
    network, params, x, y = _one_sigmoid_unit(z=-104.0, target=1.0)
    assert torch64.forward(network, params, x)[0, 0] > 0.0
    loss, _ = torch64.loss_and_gradients(network, params, x, y)
    assert loss == -TORCH_BCE_LOG_CLAMP
    assert relative_error(reference.loss(network, params, x, y), 104.0) < 1e-15


@pytest.mark.parametrize(("z", "target"), [(40.0, 0.0), (30.0, 0.0), (-30.0, 1.0), (-40.0, 1.0)])
def test_bce_gradient_is_damped_where_p_times_1_minus_p_is_below_1e_12(z, target, torch64):
    network, params, x, y = _one_sigmoid_unit(z, target)
    probability = torch64.forward(network, params, x)[0, 0]  # nn.Sigmoid's own p
    _, grads = torch64.loss_and_gradients(network, params, x, y)
    _, expected = reference.loss_and_gradients(network, params, x, y)
    # Exact math: dJ/dz = sigmoid(z) - y, magnitude ~1 here (and x = 1, so dJ/dW = dJ/dz).
    assert relative_error(expected[0][0][0, 0], probability - target) < 1e-12
    assert abs(expected[0][0][0, 0]) > 0.99
    # torch: BCELoss backward gives (p - y) / max(p (1 - p), 1e-12), nn.Sigmoid's multiplies by p (1 - p).
    variance = probability * (1.0 - probability)
    torch_formula = (probability - target) / max(variance, TORCH_BCE_BACKWARD_EPSILON) * variance
    assert relative_error(grads[0][0][0, 0], torch_formula) < 1e-12
    assert abs(grads[0][0][0, 0]) < 0.1  # 0.093 at |z| = 30, 4e-6 at z = -40, exactly 0 at z = 40


def test_float32_bce_loses_accuracy_as_sigmoid_saturates(torch32):
    # BCELoss works on p = sigmoid(z): once p is near 1, 1 - p carries only a few float32 bits
    # (spacing 6e-8 below 1), so loss and gradient are off by ~6e-8 / (1 - p) relative, far
    # above float32's epsilon, while the reference evaluates both from z.
    errors = {}
    for z in (1.0, 8.0, 12.0):
        network, params, x, y = _one_sigmoid_unit(z, target=1.0)
        loss, grads = torch32.loss_and_gradients(network, params, x, y)
        expected_loss, expected = reference.loss_and_gradients(network, params, x, y)
        one_minus_p = 1.0 / (1.0 + np.exp(z))
        errors[z] = max(relative_error(loss, expected_loss), relative_error(grads[0][0], expected[0][0]))
        assert errors[z] <= 4 * np.finfo(np.float32).eps / one_minus_p
    assert errors[1.0] < 1e-6 and errors[12.0] > FLOAT32_BOUND, errors


def test_matmul_precision_is_applied_during_a_call_and_restored_after(caller_precision):
    # On a CPU, TF32 does not exist, so what it does to the numbers cannot be shown here (it needs
    # an Ampere or later GPU). What can: the setting torch sees while its modules run.
    network, params, x, y = _one_sigmoid_unit(0.5, target=1.0)
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, inputs, output: seen.append(torch.get_float32_matmul_precision())
    )
    try:
        adapter = TorchAdapter(dtype="float32", matmul_precision="medium")
        adapter.loss_and_gradients(network, params, x, y)
        adapter.train(network, params, x, y, [np.array([0])], learning_rate=0.1)
    finally:
        hook.remove()
    assert adapter.matmul_precision == "medium"
    assert seen and set(seen) == {"medium"}
    assert torch.get_float32_matmul_precision() == caller_precision


def test_matmul_precision_defaults_to_highest_whatever_the_caller_set(caller_precision):
    torch.set_float32_matmul_precision("high")  # the caller allows TF32
    network, params, x, y = _one_sigmoid_unit(0.5, target=1.0)
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, inputs, output: seen.append(torch.get_float32_matmul_precision())
    )
    try:
        TorchAdapter(dtype="float32").loss_and_gradients(network, params, x, y)
    finally:
        hook.remove()
    assert seen and set(seen) == {"highest"}
    assert torch.get_float32_matmul_precision() == "high"


def test_matmul_precision_is_restored_when_a_call_raises(caller_precision):
    network, params, x, y = _one_sigmoid_unit(0.5, target=1.0)

    def fail(module, inputs):
        raise RuntimeError("raised inside the call")

    hook = torch.nn.modules.module.register_module_forward_pre_hook(fail)
    try:
        with pytest.raises(RuntimeError, match="raised inside the call"):
            TorchAdapter(matmul_precision="medium").loss_and_gradients(network, params, x, y)
    finally:
        hook.remove()
    assert torch.get_float32_matmul_precision() == caller_precision


def test_calls_leave_grad_mode_default_dtype_and_random_state_alone(torch64):
    case = CASES["document 001"]()
    rng_state, default_dtype = torch.get_rng_state(), torch.get_default_dtype()
    with torch.inference_mode():  # the caller's mode: the adapter turns autograd on for itself
        loss, _ = torch64.loss_and_gradients(case.network, case.params, case.x, case.y)
        torch64.train(case.network, case.params, case.x, case.y, [np.array([0, 1])], learning_rate=0.1)
        assert torch.is_inference_mode_enabled() and not torch.is_grad_enabled()
    assert relative_error(loss, reference.loss(case.network, case.params, case.x, case.y)) <= FLOAT64_BOUND
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_default_dtype() == default_dtype


# -- 5: bad input, and inputs left alone -------------------------------------------------------------


def test_unknown_dtype_raises_naming_it():
    with pytest.raises(ValueError, match="float16"):
        TorchAdapter(dtype="float16")


def test_unknown_matmul_precision_raises_naming_it():
    with pytest.raises(ValueError, match="tf32"):
        TorchAdapter(matmul_precision="tf32")


def test_unknown_device_raises_naming_it():
    with pytest.raises(ValueError, match="gpu"):
        TorchAdapter(device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_unavailable_with_a_reason():
    with pytest.raises(AdapterUnavailable, match="cuda"):
        TorchAdapter(device="cuda")


def test_missing_torch_is_unavailable_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(AdapterUnavailable, match=r"pip install 'backprop-conformance\[torch\]'"):
        TorchAdapter()


def test_importing_the_module_does_not_import_torch():
    code = "import sys, adapters.torch_adapter; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case_id", ["document 000", "3-5-4-3 relu/relu/identity cross_entropy sum, bias"])
def test_inputs_are_never_modified(dtype, case_id):
    case = CASES[case_id]()
    network, params, x, y = case.network, case.params, case.x, case.y
    originals = [array.copy() for pair in params for array in pair if array is not None] + [x.copy(), y.copy()]
    adapter = TorchAdapter(dtype=dtype)
    adapter.forward(network, params, x)
    adapter.loss_and_gradients(network, params, x, y)
    adapter.sgd_step(network, params, x, y, learning_rate=0.5)
    adapter.train(network, params, x, y, [np.arange(len(x))] * 3, learning_rate=0.5)
    after = [array for pair in params for array in pair if array is not None] + [x, y]
    assert all(np.array_equal(before, now) for before, now in zip(originals, after))  # exact: untouched


# -- 6: loading by name ---------------------------------------------------------------------------------


def test_load_adapter_by_name_gives_a_working_float32_torch():
    adapter = load_adapter("torch-float32")
    assert isinstance(adapter, Adapter) and isinstance(adapter.implementation, TorchAdapter)
    assert adapter.dtype == "float32" and adapter.label == "torch float32"
    assert all(adapter.supports(method) for method in ("forward", "sgd_step", "train"))
    document = example("001")
    loss, grads = adapter.loss_and_gradients(document.network, document.params, document.x, document.y)
    expected_loss, expected = reference.loss_and_gradients(document.network, document.params, document.x, document.y)
    _assert_loss_close(loss, expected_loss, FLOAT32_BOUND)  # TODO(tolerances): use suite.tolerances
    _assert_params_close(grads, expected, FLOAT32_BOUND, "float32 gradient")
