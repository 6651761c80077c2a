"""The reference's optimizers against torch.optim and optax, fed the same backprop gradients, and each divergence
between the two conventions pinned with its number."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import numpy as np
import pytest

from backprop_conformance.reference import Optimizer, train
from backprop_conformance.reference.optimizer_rules import init_state, optimizer_update
from backprop_conformance.reference.optimizers import INEXPRESSIBLE
from backprop_conformance.suite.variant_optimizers import momentum_buffer_from_zero
from tests.test_reference_optimizers import BATCHES, BOTH, LR, NET, PARAMS, X, Y, _by_hand, _close, _flat, _id, _worst

# --- 3. the reference against torch.optim and optax, in float64, on backprop gradients ------------------------------

def _torch(optimizer, start, gradients, dtype="float64"):
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(a, dtype=getattr(torch, dtype), requires_grad=True) for a in start]
    settings = {key: value for key, value in optimizer.hyperparameters.items()
                if ("torch", optimizer.name, key) not in INEXPRESSIBLE}  # eps_root, nesterov on adam, ...
    cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[optimizer.name]
    framework = getattr(torch.optim, cls)(tensors, foreach=False, **settings)
    for step in gradients:
        for tensor, g in zip(tensors, step):
            tensor.grad = torch.tensor(g, dtype=getattr(torch, dtype))
        framework.step()
    return [t.detach().numpy().copy() for t in tensors]


def _optax_transform(optimizer):
    optax = pytest.importorskip("optax")
    h, rule = optimizer.hyperparameters, optimizer.name
    if rule == "sgd":
        tx = optax.sgd(h["lr"], momentum=h["momentum"] or None, nesterov=h["nesterov"])
    elif rule in ("adam", "adamw"):
        make = optax.adamw if rule == "adamw" else optax.amsgrad if h["amsgrad"] else optax.adam
        extra = {"weight_decay": h["weight_decay"]} if rule == "adamw" else {}
        extra.update({} if h["amsgrad"] else {"nesterov": h["nesterov"]})
        tx = make(h["lr"], b1=h["betas"][0], b2=h["betas"][1], eps=h["eps"], eps_root=h["eps_root"], **extra)
    elif rule == "rmsprop":
        tx = optax.rmsprop(h["lr"], decay=h["alpha"], eps=h["eps"], centered=h["centered"],
                           momentum=h["momentum"] or None, nesterov=h["nesterov"], initial_scale=h["initial_scale"],
                           eps_in_sqrt=h["eps_in_sqrt"], bias_correction=h["bias_correction"])
    else:
        tx = optax.adagrad(h["lr"], initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"])
    if h["weight_decay"] and rule != "adamw":
        tx = optax.chain(optax.add_decayed_weights(h["weight_decay"]), tx)
    return tx


def _run_optax(tx, start, gradients, dtype="float64"):
    """optax's transform ``tx`` from the arrays ``start`` through ``gradients``, in ``dtype``."""
    optax, jax = pytest.importorskip("optax"), pytest.importorskip("jax")
    with jax.enable_x64(dtype == "float64"):  # thread-local, unlike jax.config.update("jax_enable_x64", True)
        params = [jax.numpy.asarray(a, dtype=dtype) for a in start]
        state = tx.init(params)
        for step in gradients:
            updates, state = tx.update([jax.numpy.asarray(g, dtype=dtype) for g in step], state, params)
            params = optax.apply_updates(params, updates)
        assert all(p.dtype == np.dtype(dtype) for p in params)
        return [np.asarray(p) for p in params]


def _optax(optimizer, start, gradients, dtype="float64"):
    return _run_optax(_optax_transform(optimizer), start, gradients, dtype)


def _framework(optimizer, start, gradients, dtype="float64"):
    return (_torch if optimizer.convention == "torch" else _optax)(optimizer, start, gradients, dtype)


CONFIGS = [  # (rule, non-default settings, the conventions that can express them)
    ("sgd", {}, BOTH), ("sgd", dict(momentum=0.9), BOTH),
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.01), BOTH),
    ("sgd", dict(momentum=0.9, dampening=0.5, weight_decay=0.01), ("torch",)),
    ("adam", {}, BOTH), ("adam", dict(amsgrad=True), BOTH),
    ("adam", dict(amsgrad=True, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-3), BOTH),
    ("adam", dict(eps_root=1e-8, betas=(0.5, 0.9)), ("optax",)), ("adam", dict(nesterov=True), ("optax",)),
    ("adamw", dict(nesterov=True, weight_decay=0.1, eps_root=1e-10), ("optax",)),
    ("adamw", {}, BOTH), ("adamw", dict(weight_decay=0.3, betas=(0.85, 0.95), eps=1e-6), BOTH),
    ("adamw", dict(amsgrad=True), ("torch",)),
    ("rmsprop", {}, BOTH), ("rmsprop", dict(centered=True), BOTH),
    ("rmsprop", dict(momentum=0.5, centered=True, weight_decay=0.1, alpha=0.8, eps=1e-6), BOTH),
    ("rmsprop", dict(bias_correction=True, initial_scale=0.5), ("optax",)),
    ("rmsprop", dict(eps_in_sqrt=False, centered=True, momentum=0.9, nesterov=True), ("optax",)),
    ("rmsprop", dict(centered=True, bias_correction=True, eps=1e-3), ("optax",)),
    ("rmsprop", dict(momentum=0.5, nesterov=True, initial_scale=1e-3, eps=1e-3, weight_decay=0.1), ("optax",)),
    ("adagrad", {}, BOTH), ("adagrad", dict(lr_decay=0.1, initial_accumulator_value=0.5, weight_decay=0.1), ("torch",)),
    ("adagrad", dict(initial_accumulator_value=0.5, weight_decay=0.1, eps=1e-3), BOTH),
]
AGAINST_FRAMEWORKS = [Optimizer(rule, c, lr=LR[rule], **settings) for rule, settings, where in CONFIGS for c in where]


@pytest.mark.parametrize("optimizer", AGAINST_FRAMEWORKS, ids=_id)
def test_the_reference_matches_its_framework_on_backprop_gradients(optimizer):
    params, state, gradients = _by_hand(optimizer)
    assert state.count == len(gradients) == 12
    _close(params, train(NET, PARAMS, X, Y, BATCHES, optimizer).params)
    worst = _worst(_framework(optimizer, _flat(PARAMS), gradients), _flat(params))
    assert worst <= 1e-12, f"{optimizer.describe()}: max relative difference {worst:.1e}"


# --- 4. where the conventions part at the same nominal settings: one parameter theta = 0.05 -------------------------

def _reference(optimizer, start, gradients, update=optimizer_update):
    params = [(a, None) for a in start]  # each array a weight without a bias
    state = init_state(optimizer, params)
    for step in gradients:
        params, state = update(optimizer, state, params, [(g, None) for g in step])
    return [w for w, _ in params]


#: The classic bug's run: torch's momentum buffer started at zero, so its first step is dampened too.
_buffer_from_zero = functools.partial(_reference, update=momentum_buffer_from_zero)


def _steps(optimizer, gs, run=_reference):
    """Each step's theta_before - theta_after for one parameter theta_0 = 0.05 fed the gradients gs."""
    thetas = [0.05, *(float(run(optimizer, [np.array([0.05])], [[np.array([g])] for g in gs[:k]])[0][0])
                      for k in range(1, len(gs) + 1))]
    return np.array([before - after for before, after in itertools.pairwise(thetas)])


def _apart(a, b):
    return abs(a - b) / max(abs(a), abs(b))


def test_rmsprop_eps_outside_the_root_in_torch_inside_in_optax_10x_at_g_1e_4():
    torch, optax = (_steps(Optimizer("rmsprop", c, lr=0.01, alpha=0.99, eps=1e-8), [1e-4])[0] for c in BOTH)
    np.testing.assert_allclose(torch, 0.01 * 1e-4 / (math.sqrt(0.01 * 1e-8) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(optax, 0.01 * 1e-4 / math.sqrt(0.01 * 1e-8 + 1e-8), rtol=1e-12)
    assert torch / optax == pytest.approx(10.0398, rel=1e-5)  # 1e-4 / (1e-5 + 1e-8) over 1e-4 / sqrt(1.01e-8)


def test_optax_rmsprop_eps_in_sqrt_false_is_torchs_rule_at_the_same_alpha():
    # The optax convention models optax.rmsprop's default, eps_in_sqrt=True; with False optax divides as torch does.
    tx = pytest.importorskip("optax").rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    gs = [3e-4, -1e-4, 2e-3, 5e-5]
    outside = _steps(None, gs, lambda _, start, gradients: _run_optax(tx, start, gradients))
    np.testing.assert_allclose(outside, _steps(Optimizer("rmsprop", lr=0.01), gs), rtol=1e-12)
    assert not np.allclose(outside, _steps(Optimizer("rmsprop", "optax", lr=0.01, alpha=0.99), gs))
    # and the reference's optax convention says so: eps_in_sqrt=False there is torch's rule, to the last bits
    modelled = _steps(Optimizer("rmsprop", "optax", lr=0.01, alpha=0.99, eps_in_sqrt=False), gs)
    np.testing.assert_allclose(modelled, _steps(Optimizer("rmsprop", lr=0.01), gs), rtol=1e-15)
    np.testing.assert_allclose(outside, modelled, rtol=1e-12)


def test_optax_centered_rmsprop_with_bias_correction_divides_by_sqrt_eps_at_step_1_and_gives_nan_in_float32():
    # At t = 1 the corrected moments are g^2 and g: the variance g^2 - g^2 is 0 in exact math, so the step is
    # lr g / sqrt(eps) (lr g / eps with eps_in_sqrt=False), and a rounding below 0 takes the root of a negative.
    g = np.random.default_rng(1).normal(size=100_000)
    inside = Optimizer("rmsprop", "optax", lr=0.01, centered=True, bias_correction=True)
    outside = dataclasses.replace(inside, eps_in_sqrt=False)
    # The reference expands the variance so that nothing cancels: exact, where the difference g^2 - g^2 leaves
    # about 1e-16 g^2 of either sign, 88% of lr g / eps at worst beside eps = 1e-8 outside the root
    reference = _reference(inside, [np.zeros(g.size)], [[g]])[0]
    np.testing.assert_allclose(reference, -0.01 * g / math.sqrt(1e-8), rtol=1e-15)  # 100x g
    np.testing.assert_allclose(_reference(outside, [np.zeros(g.size)], [[g]])[0], -0.01 * g / 1e-8, rtol=1e-15)
    np.testing.assert_allclose(_optax(inside, [np.zeros(g.size)], [[g]])[0], reference, rtol=1e-6)
    nan32 = np.isnan(_optax(inside, [np.zeros(g.size)], [[g]], "float32")[0]).mean()
    nan64 = np.isnan(_optax(outside, [np.zeros(g.size)], [[g]])[0]).mean()
    assert nan32 == pytest.approx(0.0039, rel=0.25)  # float32 (x64 off) dips below -eps: 387 of 100,000 here
    assert nan64 == pytest.approx(0.187, rel=0.1)  # float64 below 0, with no eps inside the root to lift it


def test_centered_rmsprop_with_bias_correction_from_initial_scale_is_alpha_v0_over_1_minus_alpha_at_step_1():
    # v_1 / (1 - alpha) - g^2 = alpha v_0 / (1 - alpha): the step is lr g / sqrt(alpha v_0 / (1 - alpha) + eps)
    g = np.random.default_rng(2).normal(size=1000) * 10.0 ** np.arange(-4, 4, 0.008)
    for alpha, v0, eps_in_sqrt in itertools.product((0.5, 0.9, 0.999), (1e-8, 0.3), (True, False)):
        o = Optimizer("rmsprop", "optax", lr=0.01, alpha=alpha, initial_scale=v0, centered=True,
                      bias_correction=True, eps_in_sqrt=eps_in_sqrt)
        variance = alpha * v0 / (1 - alpha)
        scale = math.sqrt(variance + 1e-8) if eps_in_sqrt else math.sqrt(variance) + 1e-8
        np.testing.assert_allclose(_reference(o, [np.zeros(g.size)], [[g]])[0], -0.01 * g / scale, rtol=1e-14)
        if v0 == 0.3:  # optax's g^2 - g^2 leaves about 1e-16 g^2: within 1e-6 of a variance of 0.15 or more
            np.testing.assert_allclose(_optax(o, [np.zeros(g.size)], [[g]])[0], -0.01 * g / scale, rtol=1e-6)


def test_rmsprop_default_alpha_0_99_in_torch_0_9_in_optax_sqrt_10_on_the_first_step():
    assert Optimizer("rmsprop").alpha == pytest.approx(0.99)
    assert Optimizer("rmsprop", "optax", lr=1).alpha == pytest.approx(0.9)
    torch, optax = (_steps(Optimizer("rmsprop", c, lr=0.01, eps=1e-300), [1e-4])[0] for c in BOTH)
    assert torch / optax == pytest.approx(math.sqrt(10), rel=1e-12)  # lr / sqrt(1 - alpha), eps aside
    torch, optax = (_steps(Optimizer("rmsprop", c, lr=0.01), [1e-4])[0] for c in BOTH)
    assert torch / optax == pytest.approx(10.4776, rel=1e-5)  # all defaults: alpha and eps together


def test_adagrad_accumulator_0_or_0_1_and_eps_outside_or_inside_the_root_99_7_percent_apart_at_g_1e_3():
    torch, optax = (_steps(Optimizer("adagrad", c, lr=0.01), [1e-3])[0] for c in BOTH)
    np.testing.assert_allclose(torch, 0.01 * 1e-3 / (1e-3 + 1e-10), rtol=1e-12)
    np.testing.assert_allclose(optax, 0.01 * 1e-3 / math.sqrt(0.1 + 1e-6 + 1e-7), rtol=1e-12)
    assert _apart(torch, optax) == pytest.approx(0.996838, abs=1e-6)  # optax's step is 1/316 of torch's


def test_sgd_torch_first_momentum_step_ignores_dampening_optax_has_no_dampening():
    dampened = _steps(Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.5), [0.3, 0.2])
    undampened = _steps(Optimizer("sgd", lr=0.1, momentum=0.9), [0.3, 0.2])
    optax = _steps(Optimizer("sgd", "optax", lr=0.1, momentum=0.9), [0.3, 0.2])
    np.testing.assert_allclose(dampened[0], undampened[0], rtol=1e-15)  # buffer_1 = g_1, not (1 - 0.5) g_1
    np.testing.assert_allclose(dampened[1], 0.1 * (0.9 * 0.3 + 0.5 * 0.2), rtol=1e-12)  # 0.037
    from_zero = _steps(Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.5), [0.3, 0.2], _buffer_from_zero)
    np.testing.assert_allclose(from_zero, [0.1 * 0.5 * 0.3, 0.1 * (0.9 * 0.5 * 0.3 + 0.5 * 0.2)], rtol=1e-12)
    assert dampened[1] / from_zero[1] == pytest.approx(1.574468, rel=1e-6)  # 0.037 / 0.0235: the first g undampened
    np.testing.assert_allclose(optax, undampened, rtol=1e-14)  # optax's trace is torch's at dampening 0: 0.03, 0.047
    with pytest.raises(ValueError, match=r"optax\.sgd has no dampening"):
        Optimizer("sgd", "optax", lr=0.1, momentum=0.9, dampening=0.5)


def test_amsgrad_max_of_raw_v_in_torch_of_bias_corrected_v_in_optax_29_percent_apart_at_step_2():
    # A large gradient, then one 100x smaller (b2 = 0.999). Step 1: both divide by sqrt(v_hat_1) = |g_1|. Step 2: v
    # has shrunk, so each keeps its step-1 maximum: optax the bias-corrected v_hat_1 = g_1^2; torch the raw
    # v_1 = (1 - b2) g_1^2, divided by this step's 1 - b2^2: g_1^2 / (1 + b2). Its root is sqrt(1 + b2) = 1.414x
    # smaller, so torch's second step is 1.414x optax's: 1 - 1 / sqrt(1.999) = 29.27% apart, whatever the scale of g.
    torch, optax = (_steps(Optimizer("adam", c, lr=0.01, amsgrad=True), [0.5, 0.005]) for c in BOTH)
    np.testing.assert_allclose(torch[0], optax[0], rtol=1e-15)
    assert _apart(torch[1], optax[1]) == pytest.approx(1 - 1 / math.sqrt(1.999), rel=1e-6)  # 0.292716
    assert torch[1] / optax[1] == pytest.approx(1.41386, rel=1e-5)


def test_adamw_default_weight_decay_1e_2_in_torch_1e_4_in_optax_100x_the_decay():
    torch, optax = Optimizer("adamw"), Optimizer("adamw", "optax", lr=1e-3)
    assert torch.weight_decay == pytest.approx(1e-2) and optax.weight_decay == pytest.approx(1e-4)
    decay = [_steps(o, [0.3])[0] - _steps(dataclasses.replace(o, weight_decay=0.0), [0.3])[0] for o in (torch, optax)]
    np.testing.assert_allclose(decay, [1e-3 * 1e-2 * 0.05, 1e-3 * 1e-4 * 0.05], rtol=1e-6)  # lr wd theta
    assert decay[0] / decay[1] == pytest.approx(100, rel=1e-6)


def test_eps_root_is_optax_only_torch_refuses_it_and_it_shrinks_the_first_step_1_over_sqrt_2_at_g_1e_4():
    for rule in ("adam", "adamw"):
        with pytest.raises(ValueError, match="eps_root=1e-08 cannot be expressed in the torch convention"):
            Optimizer(rule, eps_root=1e-8)
    with_root, without = (_steps(Optimizer("adam", "optax", lr=1e-3, eps_root=r), [1e-4])[0] for r in (1e-8, 0.0))
    assert with_root / without == pytest.approx((1e-4 + 1e-8) / (math.sqrt(2e-8) + 1e-8), rel=1e-12)  # 0.70717


SIDES = [  # the two sides of each divergence above
    (o, gs) for c in BOTH for o, gs in [
        (Optimizer("rmsprop", c, lr=0.01, alpha=0.99, eps=1e-8), [1e-4]), (Optimizer("rmsprop", c, lr=0.01), [1e-4]),
        (Optimizer("rmsprop", c, lr=0.01, eps=1e-300), [1e-4]), (Optimizer("adagrad", c, lr=0.01), [1e-3]),
        (Optimizer("sgd", c, lr=0.1, momentum=0.9), [0.3, 0.2]), (Optimizer("adamw", c, lr=1e-3), [0.3]),
        (Optimizer("adam", c, lr=0.01, amsgrad=True), [0.5, 0.005])]
] + [(Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.5), [0.3, 0.2]),
     (Optimizer("adam", "optax", lr=1e-3, eps_root=1e-8), [1e-4])]


@pytest.mark.parametrize(("optimizer", "gs"), SIDES, ids=[_id(o) for o, _ in SIDES])
def test_each_side_of_a_divergence_matches_its_framework(optimizer, gs):
    np.testing.assert_allclose(_steps(optimizer, gs), _steps(optimizer, gs, _framework), rtol=1e-12)


# --- AdamW in float32: torch rounds its factor (1 - lr weight_decay) to float32, optax adds weight_decay theta -------

def _adamw_float32(convention, lr, weight_decay, start, gradients):
    optimizer = Optimizer("adamw", convention, lr=lr, weight_decay=weight_decay)
    return _framework(optimizer, [start], [[g] for g in gradients], "float32")[0]


def test_adamw_float32_torch_rounds_1_minus_lr_wd_no_decay_below_2_to_minus_25_and_19_percent_too_much_at_1e_7():
    rng = np.random.default_rng(15)
    start = rng.standard_normal(1000).astype(np.float32)
    still = [np.zeros(1000, np.float32)] * 50  # g = 0: Adam's direction is 0 / eps = 0, only the decay moves theta
    moving = [(0.1 * rng.standard_normal(1000)).astype(np.float32) for _ in range(50)]
    # lr wd = 1e-8 < 2^-25: 1 - lr wd rounds to 1.0, so torch's float32 AdamW decays nothing, with or without g
    assert np.float32(1 - 1e-4 * 1e-4) == 1.0
    np.testing.assert_array_equal(_adamw_float32("torch", 1e-4, 1e-4, start, still), start)
    np.testing.assert_array_equal(_adamw_float32("torch", 1e-4, 1e-4, start, moving),
                                  _adamw_float32("torch", 1e-4, 0.0, start, moving))
    # lr = 1e-3, wd = 1e-4 (torch's lr, optax's wd): float32(1 - 1e-7) = 1 - 2^-23, a decay 19.2% too strong
    factor = np.float32(1 - 1e-3 * 1e-4)
    assert (1 - float(factor)) / 1e-7 - 1 == pytest.approx(0.192093, rel=1e-5)
    expected = start.copy()
    for _ in still:  # torch's param.mul_(1 - lr wd), in float32, step by step
        expected = expected * factor
    np.testing.assert_array_equal(_adamw_float32("torch", 1e-3, 1e-4, start, still), expected)
    # Against the exact trajectory, the systematic factor makes torch's float32 error several times optax's (whose
    # wd theta joins the direction before rounding): 7.2x on average over these 1000 params and 50 steps (torch 2.13,
    # optax 0.2.8 on the CPU; 5% allows for another CPU's float32 kernels, not for a different convention).
    errors = []
    for convention in BOTH:
        exact = _reference(Optimizer("adamw", convention, lr=1e-3, weight_decay=1e-4), [start.astype(np.float64)],
                           [[g.astype(np.float64)] for g in moving])[0]
        errors.append(np.mean(np.abs(_adamw_float32(convention, 1e-3, 1e-4, start, moving) - exact)))
    assert errors[0] / errors[1] == pytest.approx(7.245, rel=0.05), f"torch: {errors[0] / errors[1]:.3f}x optax"
