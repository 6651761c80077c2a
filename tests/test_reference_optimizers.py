"""Optimizer specs; train with one; agreement with torch.optim and optax; where the two conventions part."""

from __future__ import annotations

import copy
import dataclasses
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
    (dict(name="adam", nesterov=True), V,
     r"nesterov=True cannot be expressed in the torch convention: torch.optim.Adam has no Nesterov .*NAdam"),
    (dict(name="adamw", nesterov=True), V, r"nesterov=True cannot be expressed in the torch convention"),
    (dict(name="rmsprop", initial_scale=0.1), V,
     r"initial_scale=0.1 cannot be expressed in the torch convention: torch.optim.RMSprop starts its mean square"),
    (dict(name="rmsprop", eps_in_sqrt=True), V, r"eps_in_sqrt=True cannot be expressed in the torch convention"),
    (dict(name="rmsprop", bias_correction=True), V, r"bias_correction=True cannot be expressed in the torch"),
    (dict(name="rmsprop", convention="optax", lr=0.1, nesterov=True), V,
     r"nesterov=True needs momentum > 0, got momentum=0.0: optax's rmsprop has no trace"),
    (dict(name="adam", convention="optax", lr=0.1, amsgrad=True, nesterov=True), V,
     r"nesterov=True cannot be expressed with amsgrad=True in the optax convention: optax.amsgrad has no nesterov"),
    (dict(name="rmsprop", convention="optax", lr=0.1, initial_scale=-0.1), V, r"initial_scale=-0.1 must be >= 0"),
    (dict(name="rmsprop", convention="optax", lr=0.1, bias_correction=1), T, r"bias_correction=1 must be True or"),
    (dict(name="adam", amsgrad=1), T, r"amsgrad=1 must be True or False"),
    (dict(name="rmsprop", centered="yes"), T, r"centered='yes' must be True or False"),
    (dict(name="adam", eps=0.0), V, r"eps=0.0: adam would divide 0 by 0 wherever a gradient entry has been 0"),
    (dict(name="adagrad", eps=0.0), V, r"eps=0.0: adagrad with initial_accumulator_value=0.0 would divide 0 by 0"
                                       r".*give eps > 0 or initial_accumulator_value > 0"),
    (dict(name="sgd", lr=0.1, momentum=1.5), V, r"momentum=1.5 must be >= 0.0, <= 1.0: above 1 the momentum buffer"),
    (dict(name="rmsprop", momentum=1.01), V, r"momentum=1.01 must be >= 0.0, <= 1.0"),
    (dict(name="rmsprop", convention="optax", lr=0.1, eps=0.0), V, r"eps=0.0: rmsprop would divide 0 by 0"),
    (dict(name="adam", betas={0.9: 1, 0.999: 2}), V, r"betas=\{0.9: 1, 0.999: 2\} must be a pair"),
    (dict(name="adam", eps_root=math.nan), V, r"eps_root=nan must be finite"),
]


@pytest.mark.parametrize(("settings", "error", "match"), REFUSED, ids=[s[2][:40] for s in REFUSED])
def test_a_bad_setting_is_refused_naming_the_field_and_value(settings, error, match):
    with pytest.raises(error, match=match):
        Optimizer(**settings)


@pytest.mark.parametrize("optimizer", [
    Optimizer("adagrad", "optax", lr=0.1, eps=0.0), Optimizer("adagrad", eps=0.0, initial_accumulator_value=0.5),
    Optimizer("sgd", lr=0.1, momentum=1.0), Optimizer("adam", "optax", lr=0.1, eps=0.0, eps_root=1e-8),
    Optimizer("adam", lr=0.1, eps=5e-324),  # the least float64 above 0: eps sqrt(1 - beta2^t) rounds to 0
], ids=_id)
def test_a_boundary_setting_that_never_divides_0_by_0_is_taken(optimizer):
    # A dead unit's gradient is 0 from the first step: the accumulator (or eps_root) keeps its denominator > 0.
    dead = [(np.zeros_like(w), None if b is None else np.zeros_like(b)) for w, b in PARAMS]
    params, _ = optimizer_update(optimizer, init_state(optimizer, PARAMS), PARAMS, dead)
    _close(params, PARAMS)


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
    # A regression test: train's plain-SGD path once returned a state without sgd's "trace" slot, which
    # optimizer_step then refused for the very same optimizer. Now both carry the slot init_state gives sgd.
    optimizer = Optimizer("sgd", lr=0.1)
    first = train(NET, PARAMS, X, Y, BATCHES[:2], optimizer)
    assert list(first.state.slots) == ["trace"]
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


def test_numpy_scalars_are_numbers_and_flags():
    optimizer = Optimizer("adam", lr=np.float32(0.5), amsgrad=np.True_)
    assert optimizer.lr == 0.5 and optimizer.amsgrad is True


def test_a_state_of_other_shapes_a_negative_count_or_not_float64_arrays_is_refused():
    optimizer = Optimizer("adam", lr=0.01)
    other = Network((3, 4, 3), ("tanh", "identity"), "mse")
    state = init_state(optimizer, init_params(other, seed=0))
    with pytest.raises(ValueError, match=r"state\['mu'\] has shapes .* these params need"):
        train(NET, PARAMS, X, Y, BATCHES, optimizer, state=state)
    negative = OptimizerState(-5, init_state(optimizer, PARAMS).slots)
    with pytest.raises(ValueError, match=r"state.count=-5 must be an int >= 0"):
        train(NET, PARAMS, X, Y, BATCHES, optimizer, state=negative)
    slots = init_state(optimizer, PARAMS).slots
    for wrong, found in ((lambda w: w.tolist(), "list"), (lambda w: w.astype(np.float32), "float32 array")):
        state = OptimizerState(1, {**slots, "nu": [(wrong(w), b) for w, b in slots["nu"]]})
        with pytest.raises(TypeError, match=rf"state\['nu'\] W1 is a {found}; a state holds float64 arrays"):
            optimizer_step(NET, PARAMS, X, Y, optimizer, state)
