"""Updates computed block by block (reference.blocks): the numbers of one pass over the whole arrays, bit for bit,
whatever the update is allowed to write over, and nothing of the caller's written."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from backprop_conformance.reference import Network, Optimizer, blocks, init_params, optimizer_step, train
from backprop_conformance.reference.optimizer_rules import init_state, optimizer_update, written_slots
from backprop_conformance.reference.overflow import ReferenceOverflow, raising
from backprop_conformance.reference.training import _sgd_update, _sgd_update_in_place, sgd_step

# Layer 1's W has 5 blocks and a partial sixth; its b and layer 2 are below the threshold, computed whole.
NET = Network((331, 260, 3), ("tanh", "identity"), "mse")
X = np.random.default_rng(2).normal(size=(5, 331))
Y = np.random.default_rng(3).normal(size=(5, 3))
OPTIMIZERS = [
    Optimizer("sgd", lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01),
    Optimizer("sgd", "optax", lr=0.1, momentum=0.9, nesterov=True),
    Optimizer("adam", lr=0.01), Optimizer("adam", lr=0.01, amsgrad=True, weight_decay=0.1),
    Optimizer("adam", "optax", lr=0.01, eps_root=1e-9), Optimizer("adam", "optax", lr=0.01, amsgrad=True),
    Optimizer("adamw", lr=0.01), Optimizer("adamw", "optax", lr=0.01),
    Optimizer("rmsprop", lr=0.01, centered=True, momentum=0.5), Optimizer("rmsprop", "optax", lr=0.01),
    Optimizer("adagrad", lr=0.1, lr_decay=0.01), Optimizer("adagrad", "optax", lr=0.1),
]


def _ids(optimizer: Optimizer) -> str:
    return optimizer.describe()[:60]


def _state_after(optimizer: Optimizer, steps: int, params, rng):
    """The params and state after ``steps`` whole-array updates with random gradients, and one more gradient."""
    state = init_state(optimizer, params)
    for _ in range(steps):
        params, state = optimizer_update(optimizer, state, params, _gradients(params, rng))
    return params, state, _gradients(params, rng)


def _gradients(params, rng):
    # a few exact zeros: optax's adagrad keeps them apart (np.where), and sqrt(0) is its own case
    return [(np.where(rng.random(w.shape) < 0.05, 0.0, rng.normal(size=w.shape)), rng.normal(size=b.shape))
            for w, b in params]


def _copy(tree):
    return [tuple(None if a is None else a.copy() for a in pair) for pair in tree]


def _same(actual, expected) -> None:
    for pair_a, pair_e in zip(actual, expected, strict=True):
        for a, e in zip(pair_a, pair_e, strict=True):
            assert (a is None) == (e is None)
            if a is not None:
                np.testing.assert_array_equal(a, e, strict=True)


@pytest.fixture
def whole(monkeypatch):
    """Run the body with every array computed whole, as before blocks."""
    def run(function, *arguments, **keywords):
        with monkeypatch.context() as patch:
            patch.setattr(blocks, "THRESHOLD", 1 << 62)
            return function(*arguments, **keywords)
    return run


def test_the_first_layer_is_large_enough_to_be_cut_into_blocks():
    assert init_params(NET, seed=0)[0][0].size > blocks.THRESHOLD > init_params(NET, seed=0)[1][0].size
    assert init_params(NET, seed=0)[0][0].size % blocks.BLOCK  # a partial last block


@pytest.mark.parametrize("overwrite", [(), ("grads",), ("params", "state")], ids=lambda o: "+".join(o) or "new")
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=_ids)
def test_a_blockwise_update_is_the_whole_array_update_bit_for_bit(optimizer, overwrite, whole):
    # Step 3: past torch's special first step of momentum, with moments that are not zeros.
    params, state, grads = _state_after(optimizer, 2, init_params(NET, seed=0), np.random.default_rng(0))
    expected = whole(optimizer_update, optimizer, state, _copy(params), _copy(grads))
    given = (_copy(params), {slot: _copy(arrays) for slot, arrays in state.slots.items()}, _copy(grads))
    actual = optimizer_update(optimizer, type(state)(state.count, given[1]), given[0], given[2], overwrite)
    _same(actual[0], expected[0])
    for slot in state.slots:
        _same(actual[1][slot], expected[1][slot])
    assert actual[1].count == expected[1].count == 3
    if not overwrite:  # nothing it was given is written
        _same(given[0], params)
        _same(given[2], grads)
        for slot in state.slots:
            _same(given[1][slot], state.slots[slot])


@pytest.mark.parametrize("overwrite", [("grads",), ("params", "state")], ids="+".join)
def test_a_large_array_is_written_over_where_allowed_and_a_slot_left_alone_is_not_copied(overwrite):
    optimizer = Optimizer("adam", lr=0.01)  # no amsgrad: nu_max is carried as it is
    params, state, grads = _state_after(optimizer, 1, init_params(NET, seed=0), np.random.default_rng(1))
    new_params, new_state = optimizer_update(optimizer, state, params, grads, overwrite)
    into = params if "params" in overwrite else grads
    assert new_params[0][0] is into[0][0]  # large: by blocks
    assert new_params[1][0] is into[1][0]  # small: computed whole
    for layer, kind in [(0, 0), (1, 0), (1, 1)]:
        assert (new_state["mu"][layer][kind] is state["mu"][layer][kind]) == ("state" in overwrite)
    assert new_state["nu_max"][0][0] is state["nu_max"][0][0]


@pytest.mark.parametrize("optimizer", [*OPTIMIZERS, Optimizer("sgd", lr=0.1), Optimizer("rmsprop", lr=0.01)], ids=_ids)
def test_a_new_state_is_the_written_slots_in_one_new_buffer_and_the_other_slots_passed_on(optimizer):
    params, state, grads = _state_after(optimizer, 2, init_params(NET, seed=0), np.random.default_rng(5))
    new_state = optimizer_update(optimizer, state, params, grads)[1]
    given = [a for tree in (params, grads, *state.slots.values()) for pair in tree for a in pair if a is not None]
    written = [a for slot in written_slots(optimizer) for pair in new_state[slot] for a in pair if a is not None]
    for slot in set(state.slots) - set(written_slots(optimizer)):  # the rule leaves it alone: not even copied
        assert all(a is b for pair, old in zip(new_state[slot], state[slot]) for a, b in zip(pair, old))
    assert len(written) == 4 * len(written_slots(optimizer))  # two layers of W and b; plain sgd writes no slot
    assert all(a.base is written[0].base is not None for a in written)  # one allocation (speed)
    assert not any(np.shares_memory(a, b) for a in written for b in given)
    assert not any(np.shares_memory(a, b) for i, a in enumerate(written) for b in written[i + 1:])


def test_above_the_one_buffer_limit_each_new_slot_array_is_its_own_with_the_same_numbers(monkeypatch):
    optimizer = Optimizer("adam", lr=0.01, amsgrad=True)
    params, state, grads = _state_after(optimizer, 2, init_params(NET, seed=0), np.random.default_rng(6))
    expected = optimizer_update(optimizer, state, params, grads)
    limit = 8 * params[0][0].size  # bytes: less than one slot's arrays
    monkeypatch.setattr("backprop_conformance.reference.optimizer_rules.ONE_BUFFER_LIMIT", limit)
    actual = optimizer_update(optimizer, state, params, grads)
    _same(actual[0], expected[0])
    for slot in state.slots:
        _same(actual[1][slot], expected[1][slot])
        assert all(a.base is None for pair in actual[1][slot] for a in pair)  # each allocated on its own


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=_ids)
def test_no_result_of_an_update_is_a_view_of_its_scratch_arrays(optimizer):
    params, state, grads = _state_after(optimizer, 2, init_params(NET, seed=0), np.random.default_rng(7))
    new_params, new_state = optimizer_update(optimizer, state, params, grads)
    blocks.scratch(np.empty(1))  # this thread's buffers, whether the update took them or not
    buffers = blocks._SCRATCH.buffers
    assert len(buffers) == 2 and all(buffer.size == blocks.SCRATCH for buffer in buffers)
    results = [a for pair in new_params for a in pair] + [
        a for arrays in new_state.slots.values() for pair in arrays for a in pair]
    assert not any(np.shares_memory(a, buffer) for a in results if a is not None for buffer in buffers)


def test_scratch_arrays_are_distinct_per_call_kept_per_thread_and_new_above_their_size():
    first, second = blocks.scratch(np.empty((3, 4)))
    assert first.shape == second.shape == (3, 4) and not np.shares_memory(first, second)
    assert np.shares_memory(blocks.scratch(np.empty(5), 1)[0], first)  # handed out again
    other = []
    thread = threading.Thread(target=lambda: other.extend(blocks.scratch(np.empty(5))))
    thread.start()
    thread.join()
    assert not any(np.shares_memory(a, b) for a in other for b in (first, second))
    large = blocks.scratch(np.empty(blocks.SCRATCH + 1))
    assert not any(np.shares_memory(a, b) for a in large for b in (first, second))


def test_a_non_contiguous_parameter_is_updated_as_a_contiguous_one(whole):
    optimizer = Optimizer("rmsprop", lr=0.01, centered=True)
    params, state, grads = _state_after(optimizer, 1, init_params(NET, seed=0), np.random.default_rng(4))
    expected = whole(optimizer_update, optimizer, state, params, grads)
    fortran = [(np.asfortranarray(w), b) for w, b in params]
    assert not fortran[0][0].flags.c_contiguous
    actual = optimizer_update(optimizer, state, fortran, grads, ("params", "state"))
    _same(actual[0], expected[0])
    for slot in state.slots:
        _same(actual[1][slot], expected[1][slot])


@pytest.mark.parametrize("update", [_sgd_update_in_place, sgd_step], ids=["train's in-place", "sgd_step"])
def test_gradient_descent_by_blocks_is_the_whole_array_update_bit_for_bit(update, whole):
    params = init_params(NET, seed=1)
    if update is sgd_step:
        _same(sgd_step(NET, params, X, Y, 0.3), whole(sgd_step, NET, params, X, Y, 0.3))
    else:
        grads = _gradients(params, np.random.default_rng(5))
        _same(update(_copy(params), _copy(grads), 0.3), whole(_sgd_update, params, grads, 0.3))


def test_an_overflow_in_a_block_names_the_array_and_leaves_the_callers_arrays_alone():
    params = init_params(NET, seed=0)
    params[0][0][-1, -1] = 1e307  # in the last, partial block of layer 1's W
    kept = _copy(params)
    grads = [(np.full_like(w, -1e308), b) for w, b in params]
    optimizer = Optimizer("sgd", lr=1e10)
    with pytest.raises(ReferenceOverflow, match=r"the update W1 - learning_rate \* dW1 is not finite"):
        with raising("test", NET, params, X, Y, learning_rate=optimizer.lr):
            optimizer_update(optimizer, init_state(optimizer, params), params, grads, ("grads",))
    _same(params, kept)


@pytest.mark.parametrize("optimizer", [Optimizer("adam", lr=0.01, amsgrad=True), Optimizer("adagrad", "optax", lr=0.1)],
                         ids=_ids)
def test_train_and_optimizer_step_on_large_layers_leave_the_callers_params_and_state_alone(optimizer, whole):
    params = init_params(NET, seed=3)
    state = _state_after(optimizer, 1, params, np.random.default_rng(6))[1]
    kept_params, kept_state = _copy(params), {slot: _copy(arrays) for slot, arrays in state.slots.items()}
    batches = [np.arange(5), np.array([4, 0, 2]), np.arange(5)]
    trajectory = train(NET, params, X, Y, batches, optimizer, state=state)
    expected = whole(train, NET, params, X, Y, batches, optimizer, state=state)
    _same(trajectory.params, expected.params)
    stepped = optimizer_step(NET, params, X, Y, optimizer, state)
    _same(stepped[0], whole(optimizer_step, NET, params, X, Y, optimizer, state)[0])
    _same(params, kept_params)
    for slot, arrays in kept_state.items():
        _same(state.slots[slot], arrays)
