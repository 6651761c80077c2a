"""Batch schedules: document 002's epochs, batch sizes and iterations, as arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference.seeds import example


def _ceil_division(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _epochs(schedule: list[np.ndarray], per_epoch: int) -> list[list[np.ndarray]]:
    return [schedule[start : start + per_epoch] for start in range(0, len(schedule), per_epoch)]


def test_document_002_ten_thousand_samples_at_batch_5000_take_2_iterations():
    assert reference.iterations_per_epoch(10_000, 5_000) == 2
    schedule = reference.batch_schedule(10_000, 5_000, epochs=1)
    assert [len(batch) for batch in schedule] == [5_000, 5_000]
    np.testing.assert_array_equal(np.concatenate(schedule), np.arange(10_000))


def test_a_partial_last_batch_is_kept_and_counted():
    assert reference.iterations_per_epoch(50, 16) == 4
    assert [len(batch) for batch in reference.batch_schedule(50, 16, epochs=1)] == [16, 16, 16, 2]


def test_drop_last_drops_the_partial_batch():
    assert reference.iterations_per_epoch(50, 16, drop_last=True) == 3
    schedule = reference.batch_schedule(50, 16, epochs=2, drop_last=True)
    assert [len(batch) for batch in schedule] == [16] * 6
    np.testing.assert_array_equal(np.concatenate(schedule[:3]), np.arange(48))


def test_drop_last_with_no_full_batch_is_refused_naming_both_sizes():
    with pytest.raises(ValueError, match=r"batch_size=20 exceeds n_samples=10 with drop_last=True"):
        reference.batch_schedule(10, 20, epochs=1, drop_last=True)


def test_without_a_seed_every_epoch_walks_the_samples_in_order():
    for batches in _epochs(reference.batch_schedule(7, 3, epochs=3), 3):
        np.testing.assert_array_equal(np.concatenate(batches), np.arange(7))


def test_a_seed_draws_a_fresh_permutation_per_epoch_from_one_generator():
    schedule = reference.batch_schedule(50, 16, epochs=3, seed=2)
    rng = np.random.default_rng(2)
    epochs = _epochs(schedule, 4)
    for batches in epochs:
        np.testing.assert_array_equal(np.concatenate(batches), rng.permutation(50))
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
    assert not np.array_equal(np.concatenate(epochs[0]), np.arange(50))


def test_the_same_seed_reproduces_the_schedule_and_another_seed_does_not():
    first = reference.batch_schedule(50, 16, epochs=3, seed=7)
    again = reference.batch_schedule(50, 16, epochs=3, seed=7)
    other = reference.batch_schedule(50, 16, epochs=3, seed=8)
    assert len(first) == len(again) == len(other) == 12
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_example_002_schedule_is_4_iterations_per_epoch_over_3_epochs():
    seed = example("002")
    assert len(seed.batches) == 3 * reference.iterations_per_epoch(50, 16) == 12
    assert [len(batch) for batch in seed.batches[:4]] == [16, 16, 16, 2]


@given(
    n_samples=st.integers(1, 300),
    batch_size=st.integers(1, 320),
    epochs=st.integers(1, 4),
    seed=st.none() | st.integers(0, 2**32 - 1),
)
def test_every_epoch_covers_each_sample_exactly_once(n_samples, batch_size, epochs, seed):
    per_epoch = reference.iterations_per_epoch(n_samples, batch_size)
    assert per_epoch == _ceil_division(n_samples, batch_size)
    schedule = reference.batch_schedule(n_samples, batch_size, epochs, seed=seed)
    assert len(schedule) == epochs * per_epoch
    for batches in _epochs(schedule, per_epoch):
        sizes = [len(batch) for batch in batches]
        assert sizes[:-1] == [batch_size] * (per_epoch - 1)
        assert sizes[-1] == n_samples - (per_epoch - 1) * batch_size >= 1
        np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(n_samples))
        assert all(np.issubdtype(batch.dtype, np.integer) for batch in batches)


@given(
    n_samples=st.integers(1, 300),
    batch_size=st.integers(1, 300),
    epochs=st.integers(1, 4),
    seed=st.none() | st.integers(0, 2**32 - 1),
)
def test_drop_last_keeps_only_full_batches_of_distinct_samples(n_samples, batch_size, epochs, seed):
    per_epoch = reference.iterations_per_epoch(n_samples, batch_size, drop_last=True)
    assert per_epoch == n_samples // batch_size
    if per_epoch == 0:
        with pytest.raises(ValueError, match=rf"batch_size={batch_size} exceeds n_samples={n_samples}"):
            reference.batch_schedule(n_samples, batch_size, epochs, seed=seed, drop_last=True)
        return
    schedule = reference.batch_schedule(n_samples, batch_size, epochs, seed=seed, drop_last=True)
    assert len(schedule) == epochs * per_epoch
    for batches in _epochs(schedule, per_epoch):
        assert all(len(batch) == batch_size for batch in batches)
        covered = np.concatenate(batches)
        assert len(np.unique(covered)) == per_epoch * batch_size
        assert covered.min() >= 0 and covered.max() < n_samples
