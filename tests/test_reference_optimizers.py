"""Optimizer specs; train with one; agreement with torch.optim and optax; where the two conventions part."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math

import numpy as np
import pytest

from backprop_conformance.reference import (
    Network,
    Optimizer,
    OptimizerState,
    batch_schedule,
    init_params,
    loss_and_gradients,
    optimizer_step,
    train,
)
from backprop_conformance.reference.optimizer_rules import SLOTS, init_state, optimizer_update
from backprop_conformance.reference.optimizers import DEFAULTS

NET = Network((3, 4, 2), ("tanh", "identity"), "mse")
PARAMS = init_params(NET, seed=0)
X, Y = np.random.default_rng(0).normal(size=(7, 3)), np.random.default_rng(1).normal(size=(7, 2))
BATCHES = batch_schedule(7, 2, epochs=3, seed=1)  # 3 shuffled epochs of 2, 2, 2, 1 samples: 12 steps
BOTH = ("torch", "optax")
LR = {"sgd": 0.1, "adam": 0.01, "adamw": 0.01, "rmsprop": 0.01, "adagrad": 0.1}


def _close(actual, expected, rtol=1e-15):
    for a, e in zip(_flat(actual), _flat(expected), strict=True):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=0.0)


def _flat(tree):
    """The arrays of params, or of any nesting of lists and tuples of them, in order (None dropped)."""
    if isinstance(tree, (list, tuple)):
        return [a for item in tree for a in _flat(item)]
    return [] if tree is None else [tree]


def _id(optimizer):
    default = DEFAULTS[optimizer.convention][optimizer.name]
    changed = "".join(f"-{k}={v}" for k, v in optimizer.hyperparameters.items() if k != "lr" and v != default[k])
    return f"{optimizer.convention}-{optimizer.name}{changed}"


def _by_hand(optimizer):
    """The reference's params, state and (flat) gradients over BATCHES, each gradient at that step's params."""
    params, state, gradients = PARAMS, init_state(optimizer, PARAMS), []
    for batch in BATCHES:
        grads = loss_and_gradients(NET, params, X[batch], Y[batch])[1]
        gradients.append(_flat(grads))
        params, state = optimizer_update(optimizer, state, params, grads)
    return params, state, gradients


def _worst(actual, expected):
    return max(float(np.max(np.abs(a - e) / np.maximum(np.abs(e), 1e-300))) for a, e in zip(actual, expected))


# --- 1. the spec: validation, defaults, frozen, JSON --------------------------------------------------------------

V, T = ValueError, TypeError
REFUSED = [  # (settings, error, the message it must give)
    (dict(name="lbfgs"), V, r"name='lbfgs' is not one of sgd, adam, adamw, rmsprop, adagrad"),
    (dict(name="adam", convention="jax"), V, r"convention='jax' is not one of torch, optax"),
    (dict(name="sgd", betas=(0.9, 0.99)), V, r"sgd has no hyperparameter betas=\(0.9, 0.99\) \(it takes lr"),
    (dict(name="adam", eps=-1e-8), V, r"eps=-1e-08 must be >= 0"),
    (dict(name="adam", betas=(0.9, 1.0)), V, r"betas\[1\]=1.0 must be >= 0.0, < 1.0"),
    (dict(name="adam", betas=(-0.1, 0.9)), V, r"betas\[0\]=-0.1 must be >= 0.0, < 1.0"),
    (dict(name="adam", betas=(0.9,)), V, r"betas=\(0.9,\) must be a pair"),
    (dict(name="adam", betas=0.9), V, r"betas=0.9 must be a pair"),
    (dict(name="rmsprop", alpha=1.0), V, r"alpha=1.0 must be >= 0.0, < 1.0"),
    (dict(name="sgd", momentum=0.9, dampening=0.1, nesterov=True), V,
     r"nesterov=True needs momentum > 0 and dampening = 0, got momentum=0.9, dampening=0.1"),
    (dict(name="sgd", nesterov=True), V, r"nesterov=True needs momentum > 0 .*got momentum=0.0"),
    (dict(name="sgd", lr=0.0), V, r"lr=0.0 must be > 0"), (dict(name="adam", lr=-0.1), V, r"lr=-0.1 must be > 0"),
    (dict(name="sgd", lr=math.nan), V, r"lr=nan must be finite"), (dict(name="sgd", lr=math.inf), V, r"lr=inf must"),
    (dict(name="sgd", lr=True), T, r"lr=True must be a real number"),
    (dict(name="sgd", lr="0.1"), T, r"lr='0.1' must be a real number"),
    (dict(name="adam", convention="optax"), V, r"adam in the optax convention needs lr: optax has no default"),
    (dict(name="sgd", convention="optax", lr=0.1, momentum=0.9, dampening=0.5), V,
     r"dampening=0.5 cannot be expressed in the optax convention: optax.sgd has no dampening"),
    (dict(name="adagrad", convention="optax", lr=0.1, lr_decay=0.1), V,
     r"lr_decay=0.1 cannot be expressed in the optax convention: optax.adagrad has no lr_decay"),
    (dict(name="adamw", convention="optax", lr=0.1, amsgrad=True), V,
     r"amsgrad=True cannot be expressed in the optax convention: optax.adamw has no amsgrad"),
    (dict(name="adam", eps_root=1e-8), V, r"eps_root=1e-08 cannot be expressed in the torch convention"),
    (dict(name="adamw", eps_root=1e-8), V, r"eps_root=1e-08 cannot be expressed in the torch convention"),
    (dict(name="adam", amsgrad=1), T, r"amsgrad=1 must be True or False"),
    (dict(name="rmsprop", centered="yes"), T, r"centered='yes' must be True or False"),
]


@pytest.mark.parametrize(("settings", "error", "match"), REFUSED, ids=[s[2][:40] for s in REFUSED])
def test_a_bad_setting_is_refused_naming_the_field_and_value(settings, error, match):
    with pytest.raises(error, match=match):
        Optimizer(**settings)


@pytest.mark.parametrize(("name", "key", "in_torch", "in_optax"), [
    ("rmsprop", "alpha", 0.99, 0.9), ("adagrad", "initial_accumulator_value", 0.0, 0.1),
    ("adagrad", "eps", 1e-10, 1e-7), ("adamw", "weight_decay", 1e-2, 1e-4), ("adam", "eps_root", 0.0, 0.0),
])
def test_defaults_are_each_conventions_own(name, key, in_torch, in_optax):
    assert getattr(Optimizer(name), key) == pytest.approx(in_torch, rel=1e-15, abs=0.0)
    assert getattr(Optimizer(name, "optax", lr=0.1), key) == pytest.approx(in_optax, rel=1e-15, abs=0.0)


def test_an_optimizer_is_frozen_and_torch_has_default_learning_rates():
    optimizer = Optimizer("adam")
    assert optimizer.lr == pytest.approx(1e-3, rel=1e-15) and Optimizer("adagrad").lr == pytest.approx(1e-2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        optimizer.lr = 0.5  # type: ignore[misc]
    assert optimizer.lr == pytest.approx(1e-3, rel=1e-15)


@pytest.mark.parametrize("optimizer", [
    Optimizer("adam", lr=0.01, betas=(0.8, 0.99), amsgrad=True), Optimizer("adamw", "optax", lr=0.01, eps_root=1e-9),
    Optimizer("sgd", "optax", lr=0.1, momentum=0.9, nesterov=True), Optimizer("adagrad", lr_decay=0.1),
    Optimizer("rmsprop", "optax", lr=0.01, centered=True),
], ids=_id)
def test_to_json_round_trips_and_describe_names_the_convention(optimizer):
    data = json.loads(json.dumps(optimizer.to_json()))
    assert Optimizer(**data) == optimizer
    assert optimizer.describe().startswith(f"{optimizer.name}({optimizer.convention}: lr=")


# --- 2. train with an Optimizer ---------------------------------------------------------------------------------

RULES = [Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.5), Optimizer("sgd", "optax", lr=0.1, weight_decay=0.1),
         Optimizer("adam", lr=0.01, amsgrad=True), Optimizer("adamw", "optax", lr=0.01),
         Optimizer("rmsprop", lr=0.01, centered=True, momentum=0.5), Optimizer("adagrad", "optax", lr=0.1)]


@pytest.mark.parametrize("optimizer", RULES, ids=_id)
def test_train_returns_losses_params_and_the_final_state(optimizer):
    run = train(NET, PARAMS, X, Y, BATCHES, optimizer)
    assert run.losses.shape == (len(BATCHES),) and np.all(np.isfinite(run.losses))
    assert run.state.count == len(BATCHES)
    assert set(run.state.slots) == set(SLOTS[optimizer.name])
    for slot in run.state.slots:
        assert [(w.shape, b.shape) for w, b in run.state[slot]] == [(w.shape, b.shape) for w, b in PARAMS]
    assert _worst(run.params[0], PARAMS[0]) > 1e-3  # it moved


@pytest.mark.parametrize("optimizer", [*RULES, Optimizer("sgd", lr=0.1)], ids=_id)
def test_continuing_from_state_over_two_halves_equals_one_run(optimizer):
    whole = train(NET, PARAMS, X, Y, BATCHES, optimizer)
    first = train(NET, PARAMS, X, Y, BATCHES[:5], optimizer)
    second = train(NET, first.params, X, Y, BATCHES[5:], optimizer, state=first.state)
    assert second.state.count == whole.state.count == len(BATCHES)
    _close(second.params, whole.params)
    np.testing.assert_allclose(np.concatenate([first.losses, second.losses]), whole.losses, rtol=1e-15, atol=0.0)
    for slot in whole.state.slots:
        _close(second.state[slot], whole.state[slot])


def test_train_leaves_its_inputs_unchanged():
    optimizer = Optimizer("adam", lr=0.01, amsgrad=True)
    state = train(NET, PARAMS, X, Y, BATCHES[:3], optimizer).state
    kept = copy.deepcopy((PARAMS, X, Y, BATCHES, state))
    train(NET, PARAMS, X, Y, BATCHES, optimizer, state=state)
    optimizer_step(NET, PARAMS, X, Y, optimizer, state=state)
    now = [PARAMS, X, Y, BATCHES, *(state[slot] for slot in SLOTS["adam"])]
    before = [*kept[:4], *(kept[4][slot] for slot in SLOTS["adam"])]
    for a, b in zip(_flat(now), _flat(before), strict=True):
        np.testing.assert_array_equal(a, b)  # untouched: equal by construction, so compared exactly
    assert state.count == kept[4].count == 3


def test_a_float_is_plain_sgd_and_equals_the_general_rule():
    by_float = train(NET, PARAMS, X, Y, BATCHES, 0.1)
    by_spec = train(NET, PARAMS, X, Y, BATCHES, Optimizer("sgd", lr=0.1))
    _close(by_float.params, by_spec.params)
    np.testing.assert_allclose(by_float.losses, by_spec.losses, rtol=1e-15, atol=0.0)
    _close(by_float.params, _by_hand(Optimizer("sgd", lr=0.1))[0])  # through optimizer_update, as every other rule


def test_train_needs_exactly_one_of_optimizer_and_learning_rate_and_refuses_a_state_of_another_rule():
    for both_or_neither in ({}, {"optimizer": 0.1, "learning_rate": 0.1}):
        with pytest.raises(TypeError, match="exactly one of optimizer and learning_rate"):
            train(NET, PARAMS, X, Y, BATCHES, **both_or_neither)
    adam = train(NET, PARAMS, X, Y, BATCHES[:2], Optimizer("adam", lr=0.01)).state
    with pytest.raises(TypeError, match=r"state=OptimizerState\(count=2, slots=.* is not a state of rmsprop"):
        train(NET, PARAMS, X, Y, BATCHES, Optimizer("rmsprop", lr=0.01), state=adam)
    with pytest.raises(TypeError, match=r"state=\{'count': 2\} is not a state of adam"):
        optimizer_step(NET, PARAMS, X, Y, Optimizer("adam", lr=0.01), state={"count": 2})


@pytest.mark.parametrize("plain", [0.1, Optimizer("sgd", lr=0.1)], ids=["float", "Optimizer"])
def test_plain_sgd_refuses_a_state_of_another_rule(plain):
    # train's plain-SGD path (a float, or sgd without momentum or weight decay) never checks state: it adds
    # state.count to its steps and drops the rest, so adam's moments pass silently (count 2 + 12 = 14, slots {}).
    adam = OptimizerState(2, {"mu": PARAMS, "nu": PARAMS, "nu_max": PARAMS})
    with pytest.raises(TypeError, match="is not a state of sgd"):
        train(NET, PARAMS, X, Y, BATCHES, plain, state=adam)


def test_plain_sgd_state_from_train_continues_in_optimizer_step():
    # train's plain-SGD path returns OptimizerState(count) with no slots, but init_state (and so optimizer_step)
    # gives sgd a "trace" slot, so optimizer_step refuses the state train made for the very same optimizer.
    optimizer = Optimizer("sgd", lr=0.1)
    first = train(NET, PARAMS, X, Y, BATCHES[:2], optimizer)
    params, state = optimizer_step(NET, first.params, X[BATCHES[2]], Y[BATCHES[2]], optimizer, state=first.state)
    assert state.count == 3
    _close(params, train(NET, PARAMS, X, Y, BATCHES[:3], optimizer).params)


@pytest.mark.parametrize("optimizer", RULES, ids=_id)
def test_optimizer_step_equals_a_one_batch_train(optimizer):
    x, y = X[BATCHES[3]], Y[BATCHES[3]]
    start = train(NET, PARAMS, X, Y, BATCHES[:3], optimizer)
    params, state = optimizer_step(NET, start.params, x, y, optimizer, state=start.state)
    run = train(NET, start.params, x, y, [np.arange(len(x))], optimizer, state=start.state)
    assert state.count == run.state.count == 4
    _close(params, run.params)
    for slot in run.state.slots:
        _close(state[slot], run.state[slot])


# --- 3. the reference against torch.optim and optax, in float64, on backprop gradients ------------------------------

def _torch(optimizer, start, gradients):
    torch = pytest.importorskip("torch")
    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in start]
    settings = {key: value for key, value in optimizer.hyperparameters.items() if key != "eps_root"}
    cls = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[optimizer.name]
    framework = getattr(torch.optim, cls)(tensors, foreach=False, **settings)
    for step in gradients:
        for tensor, g in zip(tensors, step):
            tensor.grad = torch.tensor(g, dtype=torch.float64)
        framework.step()
    return [t.detach().numpy().copy() for t in tensors]


def _optax(optimizer, start, gradients):
    optax, jax = pytest.importorskip("optax"), pytest.importorskip("jax")
    h, rule = optimizer.hyperparameters, optimizer.name
    with jax.enable_x64(True):  # thread-local, unlike jax.config.update("jax_enable_x64", True)
        if rule == "sgd":
            tx = optax.sgd(h["lr"], momentum=h["momentum"] or None, nesterov=h["nesterov"])
        elif rule in ("adam", "adamw"):
            make = optax.adamw if rule == "adamw" else optax.amsgrad if h["amsgrad"] else optax.adam
            extra = {"weight_decay": h["weight_decay"]} if rule == "adamw" else {}
            tx = make(h["lr"], b1=h["betas"][0], b2=h["betas"][1], eps=h["eps"], eps_root=h["eps_root"], **extra)
        elif rule == "rmsprop":
            tx = optax.rmsprop(h["lr"], decay=h["alpha"], eps=h["eps"], centered=h["centered"],
                               momentum=h["momentum"] or None)
        else:
            tx = optax.adagrad(h["lr"], initial_accumulator_value=h["initial_accumulator_value"], eps=h["eps"])
        if h["weight_decay"] and rule != "adamw":
            tx = optax.chain(optax.add_decayed_weights(h["weight_decay"]), tx)
        params = [jax.numpy.asarray(a) for a in start]
        state = tx.init(params)
        for step in gradients:
            updates, state = tx.update([jax.numpy.asarray(g) for g in step], state, params)
            params = optax.apply_updates(params, updates)
        assert all(p.dtype == np.float64 for p in params)
        return [np.asarray(p) for p in params]


def _framework(optimizer, start, gradients):
    return (_torch if optimizer.convention == "torch" else _optax)(optimizer, start, gradients)


CONFIGS = [  # (rule, non-default settings, the conventions that can express them)
    ("sgd", {}, BOTH), ("sgd", dict(momentum=0.9), BOTH),
    ("sgd", dict(momentum=0.9, nesterov=True, weight_decay=0.01), BOTH),
    ("sgd", dict(momentum=0.9, dampening=0.5, weight_decay=0.01), ("torch",)),
    ("adam", {}, BOTH), ("adam", dict(amsgrad=True), BOTH),
    ("adam", dict(amsgrad=True, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-3), BOTH),
    ("adam", dict(eps_root=1e-8, betas=(0.5, 0.9)), ("optax",)),
    ("adamw", {}, BOTH), ("adamw", dict(weight_decay=0.3, betas=(0.85, 0.95), eps=1e-6), BOTH),
    ("adamw", dict(amsgrad=True), ("torch",)),
    ("rmsprop", {}, BOTH), ("rmsprop", dict(centered=True), BOTH),
    ("rmsprop", dict(momentum=0.5, centered=True, weight_decay=0.1, alpha=0.8, eps=1e-6), BOTH),
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

def _reference(optimizer, start, gradients):
    params = [(a, None) for a in start]  # each array a weight without a bias
    state = init_state(optimizer, params)
    for step in gradients:
        params, state = optimizer_update(optimizer, state, params, [(g, None) for g in step])
    return [w for w, _ in params]


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


def test_rmsprop_default_alpha_0_99_in_torch_0_9_in_optax_sqrt_10_on_the_first_step():
    assert Optimizer("rmsprop").alpha == pytest.approx(0.99)
    assert Optimizer("rmsprop", "optax", lr=1).alpha == pytest.approx(0.9)
    torch, optax = (_steps(Optimizer("rmsprop", c, lr=0.01, eps=0.0), [1e-4])[0] for c in BOTH)
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
    from_zero = 0.1 * (0.9 * 0.5 * 0.3 + 0.5 * 0.2)  # 0.0235, a buffer dampened from zero
    assert dampened[1] / from_zero == pytest.approx(0.037 / 0.0235, rel=1e-12)  # 1.574x
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
        (Optimizer("rmsprop", c, lr=0.01, eps=0.0), [1e-4]), (Optimizer("adagrad", c, lr=0.01), [1e-3]),
        (Optimizer("sgd", c, lr=0.1, momentum=0.9), [0.3, 0.2]), (Optimizer("adamw", c, lr=1e-3), [0.3]),
        (Optimizer("adam", c, lr=0.01, amsgrad=True), [0.5, 0.005])]
] + [(Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.5), [0.3, 0.2]),
     (Optimizer("adam", "optax", lr=1e-3, eps_root=1e-8), [1e-4])]


@pytest.mark.parametrize(("optimizer", "gs"), SIDES, ids=[_id(o) for o, _ in SIDES])
def test_each_side_of_a_divergence_matches_its_framework(optimizer, gs):
    np.testing.assert_allclose(_steps(optimizer, gs), _steps(optimizer, gs, _framework), rtol=1e-12)
