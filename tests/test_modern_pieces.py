"""The activations and losses people train with: exact in the reference, and where torch and JAX disagree.

Each known divergence of ``adapters.divergences`` about them is pinned here with its number.
"""

from __future__ import annotations

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference.activations import (
    ACTIVATION_FUNCTIONS,
    SMOOTH_ACTIVATIONS,
    gelu,
    gelu_derivative,
    gelu_tanh,
    gelu_tanh_derivative,
    softplus,
)
from backprop_conformance.suite.rounding import C_F, derivative_scale, unit_roundoff

RNG = np.random.default_rng(14)
GRID = np.linspace(-6.0, 6.0, 1_200_001)

#: (hidden, output, loss, outputs): networks made of the new pieces, analytic ones first.
ANALYTIC = [
    ("gelu", "gelu_tanh", "mse", 2), ("silu", "softplus", "mse", 2), ("gelu_tanh", "identity", "bce_with_logits", 2),
    ("softplus", "identity", "cross_entropy(label_smoothing=0.1)", 3), ("silu", "gelu", "mse", 1),
]
PIECEWISE = [
    ("leaky_relu", "tanh", "mse", 2), ("leaky_relu(negative_slope=0.2)", "elu(alpha=0.5)", "mse", 2),
    ("elu", "identity", "huber", 2), ("tanh", "identity", "huber(delta=0.5)", 2),
]


def _problem(hidden: str, output: str, loss: str, outputs: int):
    network = reference.Network((3, 4, outputs), (hidden, output), loss)
    params = reference.init_params(network, seed=int(RNG.integers(1000)))
    x = RNG.normal(size=(5, 3))
    if network.loss_name == "cross_entropy":
        y = RNG.integers(0, outputs, 5)
    elif network.loss_name == "bce_with_logits":
        y = RNG.uniform(0, 1, (5, outputs))
    else:
        y = RNG.normal(size=(5, outputs))
    return network, params, x, y


def test_the_analytic_new_activations_are_marked_smooth():
    assert {"gelu", "gelu_tanh", "silu", "softplus"} <= SMOOTH_ACTIVATIONS
    assert not {"leaky_relu", "elu"} & SMOOTH_ACTIVATIONS


@pytest.mark.parametrize(("hidden", "output", "loss", "outputs"), ANALYTIC + PIECEWISE[2:])
def test_reference_matches_the_complex_step(hidden, output, loss, outputs):
    network, params, x, y = _problem(hidden, output, loss, outputs)
    _, grads = reference.loss_and_gradients(network, params, x, y)
    assert reference.worst_relative_error(grads, reference.complex_step_gradients(network, params, x, y)) <= 1e-12


@pytest.mark.parametrize(("hidden", "output", "loss", "outputs"), ANALYTIC + PIECEWISE)
def test_reference_matches_the_scalar_chain_rule_and_explain(hidden, output, loss, outputs):
    network, params, x, y = _problem(hidden, output, loss, outputs)
    _, grads = reference.loss_and_gradients(network, params, x, y)
    assert reference.worst_relative_error(grads, reference.chain_rule_gradients(network, params, x, y)) <= 1e-12
    assert reference.explain(network, params, x, y, "W1[0,1]").gradient == pytest.approx(grads[0][0][0, 1], rel=1e-12)


def test_kinks_follow_torch():
    zero = np.zeros(1)
    assert ACTIVATION_FUNCTIONS["leaky_relu(negative_slope=0.2)"].derivative(zero)[0] == 0.2  # JAX: 1
    assert ACTIVATION_FUNCTIONS["elu(alpha=0.5)"].derivative(zero)[0] == 0.5


def test_divergence_gelu_tanh_approximation_is_up_to_4_7e_4_in_value_and_8_7e_4_in_gradient():
    value = np.abs(gelu(GRID) - gelu_tanh(GRID))
    gradient = np.abs(gelu_derivative(GRID) - gelu_tanh_derivative(GRID))
    assert value.max() == pytest.approx(4.73e-4, rel=1e-3)
    assert abs(GRID[value.argmax()]) == pytest.approx(2.70, abs=0.01)  # at +-2.70: the difference is even
    assert gradient.max() == pytest.approx(8.68e-4, rel=1e-3)
    assert GRID[gradient.argmax()] == pytest.approx(2.02, abs=0.01)


def test_divergence_jax_gelu_defaults_to_the_tanh_approximation():
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        z = np.array([-2.7, 2.02])
        default = np.asarray(jax.nn.gelu(z))
        np.testing.assert_allclose(default, gelu_tanh(z), rtol=1e-13)
        assert abs(default[0] - gelu(z)[0]) == pytest.approx(4.73e-4, rel=1e-2)


def test_divergence_torch_softplus_returns_z_above_its_threshold():
    torch = pytest.importorskip("torch")
    z = torch.tensor([20.5], dtype=torch.float64, requires_grad=True)
    out = torch.nn.Softplus()(z)
    out.backward()
    assert float(out.detach()) == 20.5 and float(z.grad) == 1.0  # exactly z, gradient exactly 1
    assert float(softplus(np.array(20.5))) - 20.5 == pytest.approx(1.25e-9, rel=1e-3)  # exact math, and JAX
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        assert float(jax.nn.softplus(20.5)) - 20.5 == pytest.approx(1.25e-9, rel=1e-3)


def test_divergence_leaky_relu_at_zero_is_the_slope_in_torch_and_1_in_jax():
    torch = pytest.importorskip("torch")
    z = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    torch.nn.LeakyReLU(0.2)(z).backward()
    assert float(z.grad) == 0.2
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        assert float(jax.grad(lambda v: jax.nn.leaky_relu(v, 0.2))(0.0)) == 1.0


def test_divergence_optax_l2_loss_has_a_factor_one_half():
    optax = pytest.importorskip("optax")
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        a, y = np.array([1.5, -0.25]), np.array([0.5, 0.75])
        np.testing.assert_allclose(optax.l2_loss(a, y), 0.5 * optax.squared_error(a, y), rtol=1e-15)


def test_divergence_torch_smooth_l1_is_huber_divided_by_beta():
    torch = pytest.importorskip("torch")
    a, y = torch.tensor([1.5, -0.25, 3.0], dtype=torch.float64), torch.tensor([0.5, 0.75, 0.0], dtype=torch.float64)
    for beta in (0.5, 2.0):
        smooth = torch.nn.SmoothL1Loss(beta=beta)(a, y)
        huber = torch.nn.HuberLoss(delta=beta)(a, y)
        assert float(smooth) == pytest.approx(float(huber) / beta, rel=1e-15)


def test_label_smoothing_matches_torch_and_optax():
    torch = pytest.importorskip("torch")
    network = reference.Network((2, 3), ("identity",), "cross_entropy(label_smoothing=0.1)")
    params, x, y = reference.init_params(network, seed=3), RNG.normal(size=(4, 2)), np.array([0, 2, 1, 2])
    z = x @ params[0][0].T + params[0][1]
    expected = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(torch.tensor(z), torch.tensor(y))
    assert reference.loss(network, params, x, y) == pytest.approx(float(expected), rel=1e-14)


@pytest.mark.parametrize("name", ["gelu_tanh", "silu"])
def test_derivative_rounding_bound_covers_autodiffs_cancelling_formula(name):
    # Found by the sweep (JAX float64, gelu_tanh at z about -4): autodiff's derivative formulas cancel for
    # large |z|, so their rounding is absolute and grows with |z|. Evaluated in float32 on float32 inputs
    # as JAX's autodiff writes them, against the exact derivative: a constant C_F ulps was 2.6x (gelu_tanh)
    # and 1.8x (silu) too small; C_F ulps times derivative_scale holds.
    z = np.linspace(-8, 8, 20001).astype(np.float32)
    if name == "gelu_tanh":
        k, c = np.float32(np.sqrt(2 / np.pi)), np.float32(0.044715)
        t = np.tanh(k * (z + c * z**3))
        computed = np.float32(0.5) * (1 + t) + np.float32(0.5) * z * (1 - t * t) * k * (1 + 3 * c * z * z)
    else:
        s = 1 / (1 + np.exp(-z))
        computed = s * (1 + z * (1 - s))
    exact = ACTIVATION_FUNCTIONS[name].derivative(z.astype(np.float64))
    error = np.abs(computed.astype(np.float64) - exact)
    bound = C_F[name] * unit_roundoff("float32") * derivative_scale(name, z.astype(np.float64))
    assert np.all(error <= bound)
    assert np.max(error / (C_F[name] * unit_roundoff("float32"))) > 1  # the scale is needed
