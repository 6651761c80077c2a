"""The finiteness check on large arrays: a dot product, not a mask (reference.validation, speed).

From ``_DOT_FROM`` entries on, an array is checked by the sum of its
squares. These tests pin what that shortcut must keep: every NaN and every
infinity found and named at its index, on both sides of the threshold, in
any memory layout, and huge finite entries (whose squares overflow) still
accepted.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference.validation import _DOT_FROM

WIDE = reference.Network((_DOT_FROM // 2, 3, 1), ("tanh", "identity"), "mse")
LABELS = np.zeros((4, 1))


def _x(rows: int) -> np.ndarray:
    return np.random.default_rng(rows).uniform(-1.0, 1.0, (rows, WIDE.sizes[0]))


@given(
    rows=st.sampled_from([1, 2, 4]),  # 1: below the threshold; 2 and 4: at it and above
    bad=st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=1, max_size=3),
    where=st.data(),
)
def test_every_non_finite_x_is_found_and_the_first_named(rows, bad, where):
    x = _x(rows)
    flat = where.draw(st.lists(st.integers(0, x.size - 1), min_size=len(bad), max_size=len(bad), unique=True))
    for index, value in zip(flat, bad):
        x.flat[index] = value
    first = np.unravel_index(min(flat), x.shape)
    with pytest.raises(ValueError, match=rf"x has a non-finite entry .* at \[{first[0]}, {first[1]}\]"):
        reference.loss(WIDE, reference.init_params(WIDE, seed=0), x, LABELS[:rows])


def test_inf_and_minus_inf_together_are_found():
    """A plain sum would turn them into NaN; the squares make them inf: either way, not finite."""
    x = _x(4)
    x[1, 5], x[3, 7] = np.inf, -np.inf
    with pytest.raises(ValueError, match=r"x has a non-finite entry inf at \[1, 5\]"):
        reference.loss(WIDE, reference.init_params(WIDE, seed=0), x, LABELS)


def test_a_non_finite_entry_of_a_transposed_view_is_found():
    x = np.asfortranarray(_x(4))
    x[2, 9] = np.nan
    assert not x.flags.c_contiguous and x.size >= _DOT_FROM
    with pytest.raises(ValueError, match=r"x has a non-finite entry nan at \[2, 9\]"):
        reference.loss(WIDE, reference.init_params(WIDE, seed=0), x, LABELS)


def test_huge_finite_entries_whose_squares_overflow_are_accepted():
    x = _x(4)
    x[0, 0] = 1e300  # its square is inf: the long way, which finds every entry finite
    params = reference.init_params(WIDE, seed=0)
    assert np.isfinite(reference.loss(WIDE, params, x, LABELS))
    params[0] = (np.full_like(params[0][0], 1e-300), params[0][1])
    params[0][0][1, 2] = -1e200
    assert np.isfinite(reference.loss(WIDE, params, np.ones((4, WIDE.sizes[0])), LABELS))


def test_a_huge_weight_matrix_with_a_nan_is_named():
    params = reference.init_params(WIDE, seed=0)
    weight = params[0][0]
    assert weight.size >= _DOT_FROM
    weight[2, 1000] = np.nan
    with pytest.raises(ValueError, match=r"W1 has a non-finite entry nan at \[2, 1000\]"):
        reference.sgd_step(WIDE, params, _x(4), LABELS, 0.1)
