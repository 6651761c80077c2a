"""The layer-wise backward pass against the reference's three independent oracles.

complex step        smooth networks, norm-wise relative error <= 1e-12 per array
scalar chain rule   every activation and loss, relative error <= 1e-13 per array
finite differences  relu included, away from its kink; error model eps^(2/3)

Relative error is not a fair yardstick for an array whose entries are sums
that cancel: any two float64 evaluations of such a sum, each correct, differ
by up to a few eps times the sum of the magnitudes of its terms
(``gradient_magnitudes``), which can dwarf the sum itself. So an array passes
if it meets the relative tolerance, or if its difference is below
ROUNDING_FLOOR times those magnitudes; only the arrays whose cancellation is
mild (condition number <= WELL_CONDITIONED) are counted in the worst
relative errors printed at the end of the run.
"""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given, note
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference.backprop import _forward
from tests.strategies_reference import (
    ALL_ACTIVATIONS,
    ROUNDING_FLOOR,
    SMOOTH_ACTIVATIONS,
    Problem,
    draw_problem,
    gradient_magnitudes,
    relu_units_near_kink,
    saturated_units,
)

COMPLEX_STEP_TOLERANCE = 1e-12
CHAIN_RULE_TOLERANCE = 1e-13
# Arrays whose condition number ||magnitudes|| / ||gradient|| is at most this
# are the ones counted in the summary's worst relative error: for them the
# rounding floor is at most 1e-13 relative, so the relative tolerance decides.
WELL_CONDITIONED = 10.0
# A gradient array that is 0 in both computations, or rounding noise around
# 0 (e.g. a two-class softmax error [p0 - 1, p1] times two equal weights).
ZERO_GRADIENT_ABS_TOLERANCE = 1e-15


def _named(grads: reference.Params) -> list[tuple[str, np.ndarray]]:
    named = []
    for layer, (d_weight, d_bias) in enumerate(grads, start=1):
        named.append((f"W{layer}", d_weight))
        if d_bias is not None:
            named.append((f"b{layer}", d_bias))
    return named


def _assert_gradients_agree(
    problem: Problem, actual: reference.Params, expected: reference.Params, tolerance: float, what: str
) -> float | None:
    """Assert ``actual`` (the reference) agrees with ``expected`` (an oracle) array by array.

    Returns the worst relative error among the well-conditioned arrays, or
    None when there is none.
    """
    __tracebackhide__ = True
    magnitudes = gradient_magnitudes(problem)
    worst = None
    for (name, got), (_, wanted), (_, scale) in zip(_named(actual), _named(expected), _named(magnitudes)):
        assert got.shape == wanted.shape, f"d{name}: shape {got.shape}, {what} gives {wanted.shape}"
        context = f"({problem.describe()}); reference = {got.tolist()}, {what} = {wanted.tolist()}"
        got_largest, wanted_largest = float(np.max(np.abs(got))), float(np.max(np.abs(wanted)))
        if min(got_largest, wanted_largest) <= ZERO_GRADIENT_ABS_TOLERANCE:
            assert max(got_largest, wanted_largest) <= ZERO_GRADIENT_ABS_TOLERANCE, (
                f"d{name}: one side is zero to rounding, the other has |entry| up to "
                f"{max(got_largest, wanted_largest):.3e} > {ZERO_GRADIENT_ABS_TOLERANCE:.0e} {context}"
            )
            continue
        error = reference.relative_error(got, wanted)
        difference = float(np.linalg.norm(got - wanted))
        floor = ROUNDING_FLOOR * float(np.linalg.norm(scale))
        assert error <= tolerance or difference <= floor, (
            f"d{name}: reference and {what} differ by relative error {error:.3e} > {tolerance:.0e}, "
            f"and by {difference:.3e} > {floor:.3e} = {ROUNDING_FLOOR:.0e} x the magnitude of its terms {context}"
        )
        if float(np.linalg.norm(scale)) <= WELL_CONDITIONED * float(np.linalg.norm(wanted)):
            worst = error if worst is None else max(worst, error)
    return worst


def _record(agreement_log, title: str, worst: float | None, problem: Problem) -> None:
    agreement_log.record(title, 0.0 if worst is None else worst, problem.describe())


@given(data=st.data())
def test_layerwise_gradients_match_the_complex_step(data, agreement_log):
    problem = draw_problem(data, SMOOTH_ACTIVATIONS)
    # A saturated unit's f'(z) is computed by the reference as 1 - tanh^2 or
    # s (1 - s), with relative error eps / f'(z), while the complex step gets
    # it exactly: a known limitation, pinned in test_reference_saturation.py.
    assume(saturated_units(problem) == 0)
    note(problem.repro())
    _, exact = reference.loss_and_gradients(problem.network, problem.params, problem.x, problem.y)
    stepped = reference.complex_step_gradients(problem.network, problem.params, problem.x, problem.y)
    worst = _assert_gradients_agree(problem, exact, stepped, COMPLEX_STEP_TOLERANCE, "complex step")
    _record(agreement_log, "reference vs complex step", worst, problem)


@given(data=st.data())
def test_layerwise_gradients_match_the_scalar_chain_rule(data, agreement_log):
    problem = draw_problem(data, ALL_ACTIVATIONS, max_depth=3, max_width=5, max_batch=3)
    # The two sum z in different orders; a relu z that is 0 only by
    # cancellation may be +tiny in one and 0 in the other, so relu' differs.
    assume(relu_units_near_kink(problem, margin=1e-9) == 0)
    if problem.network.loss_name in ("bce", "bce_with_logits"):
        # The chain rule takes document 000's factors dJ/da = -(y/a - (1-y)/(1-a))
        # and da/dz separately: finite only while a is not rounded to 0 or 1.
        outputs = problem.outputs()
        assume(bool(np.all((outputs > 0.0) & (outputs < 1.0))))
    note(problem.repro())
    _, exact = reference.loss_and_gradients(problem.network, problem.params, problem.x, problem.y)
    scalar = reference.chain_rule_gradients(problem.network, problem.params, problem.x, problem.y)
    worst = _assert_gradients_agree(problem, exact, scalar, CHAIN_RULE_TOLERANCE, "scalar chain rule")
    _record(agreement_log, "reference vs scalar chain rule", worst, problem)


# Central differences with h = eps^(1/3) max(1, |theta|) (about 6e-6) have
# truncation error h^2 |J'''| / 6 and rounding error eps |J| / h, each about
# eps^(2/3) ~ 4e-11 times the size of J and its derivatives: a relative error
# near 1e-10 on these bounded networks. The tolerance leaves a factor of 1000
# for third derivatives compounded over four layers of width 6; FD_FLOOR
# judges an array that is small next to the whole gradient against the
# whole gradient's scale, as FD's error does not shrink with the entry.
FD_RELATIVE_TOLERANCE = 1e-7
FD_FLOOR = 1e-7
KINK_MARGIN = 1e-4


def _relu_pattern(problem: Problem, params: reference.Params) -> list[np.ndarray]:
    zs, _ = _forward(problem.network, params, problem.x)
    return [z > 0 for z, name in zip(zs, problem.network.activations) if name == "relu"]


def _stencil_crosses_a_kink(problem: Problem) -> bool:
    """Return whether some theta +- h of the FD stencil moves a relu z across 0."""
    pattern = _relu_pattern(problem, problem.params)
    if not pattern:
        return False
    step_factor = np.finfo(np.float64).eps ** (1 / 3)
    for index, (weight, bias) in enumerate(problem.params):
        for slot, array in enumerate((weight, bias)):
            if array is None:
                continue
            for position in np.ndindex(array.shape):
                step = step_factor * max(1.0, abs(float(array[position])))
                for sign in (1.0, -1.0):
                    shifted = [[w.copy(), None if b is None else b.copy()] for w, b in problem.params]
                    shifted[index][slot][position] += sign * step
                    moved = _relu_pattern(problem, [(w, b) for w, b in shifted])
                    if any(not np.array_equal(p, q) for p, q in zip(pattern, moved)):
                        return True
    return False


@given(data=st.data())
def test_layerwise_gradients_match_central_finite_differences(data, agreement_log):
    problem = draw_problem(data, ALL_ACTIVATIONS, max_depth=3, max_width=5, max_batch=3)
    zs = problem.pre_activations()
    assume(all(np.all(np.abs(z) > KINK_MARGIN) for z, name in zip(zs, problem.network.activations) if name == "relu"))
    assume(not _stencil_crosses_a_kink(problem))
    note(problem.repro())
    loss, exact = reference.loss_and_gradients(problem.network, problem.params, problem.x, problem.y)
    differenced = reference.finite_difference_gradients(problem.network, problem.params, problem.x, problem.y)
    gradient_scale = float(np.sqrt(sum(float(np.sum(g**2)) for _, g in _named(exact))))
    worst = 0.0
    for (name, got), (_, wanted) in zip(_named(exact), _named(differenced)):
        difference = float(np.linalg.norm(got - wanted))
        allowed = FD_RELATIVE_TOLERANCE * float(np.linalg.norm(got)) + FD_FLOOR * max(gradient_scale, abs(loss))
        assert difference <= allowed, (
            f"d{name}: reference and central differences differ by {difference:.3e} > allowed {allowed:.3e} "
            f"({problem.describe()}); reference = {got.tolist()}, finite differences = {wanted.tolist()}"
        )
        if float(np.linalg.norm(got)) >= 1e-2 * max(gradient_scale, abs(loss)) > 0.0:
            # an array on the scale of J and of the whole gradient: the eps^(2/3) regime
            worst = max(worst, reference.relative_error(wanted, got))
    agreement_log.record("reference vs central differences", worst, problem.describe())
