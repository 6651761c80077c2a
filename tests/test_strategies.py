"""The suite's strategies draw varied, bounded, valid cases, and shrink to the smallest network.

The statistics are taken over derandomized runs, so they are the same on
every run; the thresholds leave a wide margin around what is measured (in
brackets), so that a change of Hypothesis's generation does not flip them.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings

from backprop_conformance.adapters import AdapterModifiedInput, load_adapter
from backprop_conformance.reference.network import Network
from backprop_conformance.suite import judge
from backprop_conformance.suite.assertions import ConformanceError
from backprop_conformance.suite.comparisons import compare_loss_and_gradients
from backprop_conformance.suite.strategies import (
    BCE_OUTPUT_SCALES,
    INPUT_BOUND,
    LAYER_SCALES,
    LOSS_SPECS,
    TRAINING_SCALES,
    Case,
    cases,
    parameters,
    targets,
    training_cases,
)
from backprop_conformance.suite.values import PROBABILITY_EDGES, TINY

EXAMPLES = 400
DERANDOMIZED = settings(
    max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
    phases=[Phase.generate], suppress_health_check=list(HealthCheck),
)


def draw_many(strategy) -> list:
    """Return the values of a derandomized run of ``strategy`` (EXAMPLES of them)."""
    drawn = []

    @DERANDOMIZED
    @given(value=strategy)
    def collect(value):
        drawn.append(value)

    collect()
    return drawn


@cache
def drawn_cases() -> tuple[Case, ...]:
    return tuple(draw_many(cases()))


@cache
def drawn_training_cases() -> tuple[Case, ...]:
    return tuple(draw_many(training_cases()))


def dead_rows(weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """Return which units are dead: their row of W, and their b, exactly zero."""
    dead = np.all(weight == 0.0, axis=1)
    return dead if bias is None else dead & (bias == 0.0)


def distinct_fraction(values: np.ndarray) -> float:
    return len(np.unique(values)) / values.size


def test_weight_matrices_are_not_near_constant():
    # hnp.arrays' sparse fill gave a median of 4% distinct values and 94% of
    # the matrices under half distinct. Dead units are zero rows on purpose,
    # so the live rows are judged [measured: 100% of them >= 90% distinct].
    live = []
    for case in drawn_cases():
        for weight, bias in case.params:
            rows = weight[~dead_rows(weight, bias)]
            if rows.size >= 9:
                live.append(distinct_fraction(rows))
    assert len(live) >= 100, len(live)
    assert np.mean(np.array(live) >= 0.9) >= 0.9, sorted(live)[:20]


def test_every_entry_is_finite_and_within_its_bound():
    for case in drawn_cases():
        for layer, (weight, bias) in enumerate(case.params, start=1):
            last_bce = case.network.loss_name == "bce" and layer == case.network.depth
            bound = max(BCE_OUTPUT_SCALES if last_bce else LAYER_SCALES)
            for array in (weight, bias) if bias is not None else (weight,):
                assert array.dtype == np.float64
                assert np.all(np.isfinite(array)) and np.all(np.abs(array) <= bound), (layer, array)
        assert np.all(np.isfinite(case.x)) and np.all(np.abs(case.x) <= INPUT_BOUND), case.x
        assert case.x.shape == (len(case.x), case.network.sizes[0])
        assert 1e-3 <= case.learning_rate <= 0.5
    for case in drawn_training_cases():
        for weight, bias in case.params:
            assert np.all(np.abs(weight) <= max(TRAINING_SCALES))
            assert bias is None or np.all(np.abs(bias) <= max(TRAINING_SCALES))
        assert 1e-3 <= case.learning_rate <= 0.1


def test_targets_are_valid_for_their_loss():
    losses = set()
    for case in (*drawn_cases(), *drawn_training_cases()):
        n_out, m = case.network.sizes[-1], len(case.x)
        losses.add(case.network.loss)
        if case.network.loss_name == "cross_entropy":
            assert case.y.shape == (m,) and np.issubdtype(case.y.dtype, np.integer)
            assert np.all((case.y >= 0) & (case.y < n_out)), (case.y, n_out)
        else:
            assert case.y.shape == (m, n_out) and case.y.dtype == np.float64
            low = 0.0 if case.network.loss_name in ("bce", "bce_with_logits") else -INPUT_BOUND
            high = 1.0 if case.network.loss_name in ("bce", "bce_with_logits") else INPUT_BOUND
            assert np.all(np.isfinite(case.y) & (case.y >= low) & (case.y <= high)), case.y
    assert losses == set(LOSS_SPECS)  # every loss, and each with a parameter changed


def test_labels_use_more_than_one_class():
    labelled = [case.y for case in drawn_cases() if case.network.loss_name == "cross_entropy" and len(case.y) >= 4]
    assert labelled
    assert np.mean([len(np.unique(y)) > 1 for y in labelled]) >= 0.8


def _live_entries(case: Case) -> list[tuple[np.ndarray, tuple[float, ...]]]:
    """Return each layer's live weights and biases with the scales the layer may have."""
    entries = []
    for layer, (weight, bias) in enumerate(case.params, start=1):
        last_bce = case.network.loss_name in ("bce", "bce_with_logits") and layer == case.network.depth
        scales = BCE_OUTPUT_SCALES if last_bce else LAYER_SCALES
        live = ~dead_rows(weight, bias)
        entries.append((weight[live].ravel(), scales))
        if bias is not None:
            entries.append((bias[live], scales))
    return entries


def test_edge_values_appear_across_draws():
    found = {"weight 0.0": 0, "weight at +-scale": 0, "weight tiny": 0, "x 0.0": 0, "x at +-2": 0, "x tiny": 0}
    for case in drawn_cases():
        for values, scales in _live_entries(case):
            found["weight 0.0"] += int(np.any(values == 0.0))
            found["weight at +-scale"] += int(np.any(np.isin(np.abs(values), scales)))
            found["weight tiny"] += int(np.any((values != 0.0) & (np.abs(values) <= TINY * max(scales))))
        found["x 0.0"] += int(np.any(case.x == 0.0))
        found["x at +-2"] += int(np.any(np.abs(case.x) == INPUT_BOUND))
        found["x tiny"] += int(np.any((case.x != 0.0) & (np.abs(case.x) <= TINY * INPUT_BOUND)))
    # x is one array among many that edge values can go to: its kinds are rarer, so each must appear, and >= 3 in all.
    x_kinds = [count for kind, count in found.items() if kind.startswith("x ")]
    weight_kinds = [count for kind, count in found.items() if not kind.startswith("x ")]
    assert all(count >= 3 for count in weight_kinds) and all(x_kinds) and sum(x_kinds) >= 3, found


def test_bce_targets_reach_exactly_0_and_1():
    bce = [case.y for case in (*drawn_cases(), *drawn_training_cases())
           if case.network.loss_name in ("bce", "bce_with_logits")]
    assert any(np.any(y == 0.0) for y in bce)
    assert any(np.any(y == 1.0) for y in bce)
    # Soft targets (not hard 0/1 labels) are varied probabilities, not a repeated fill value.
    soft = [y for y in bce if y.size >= 4 and not np.all((y == 0.0) | (y == 1.0))]
    assert len(soft) >= 10 and np.median([distinct_fraction(y) for y in soft]) >= 0.9
    # ... and Hypothesis places PROBABILITY_EDGES in some of them.
    assert any(np.any(np.isin(y, PROBABILITY_EDGES)) for y in soft)


def test_dead_units_occur_in_some_layers_but_not_most():
    layers = [dead_rows(weight, bias) for case in drawn_cases() for weight, bias in case.params]
    with_dead = np.mean([dead.any() for dead in layers])
    assert 0.1 <= with_dead <= 0.7, with_dead  # [measured: 0.46]
    dead_relu = [
        case for case in drawn_cases()
        if any(
            name == "relu" and dead_rows(*case.params[index]).any()
            for index, name in enumerate(case.network.activations)
        )
    ]
    assert len(dead_relu) >= 5  # relu'(0) = 0 is exercised


def test_the_same_choices_give_the_same_case():
    first, second = draw_many(cases()), draw_many(cases())
    for one, other in zip(first, second, strict=True):
        assert one.network == other.network
        np.testing.assert_array_equal(one.x, other.x)
        np.testing.assert_array_equal(one.y, other.y)
        for (w1, b1), (w2, b2) in zip(one.params, other.params, strict=True):
            np.testing.assert_array_equal(w1, w2)
            assert (b1 is None and b2 is None) or np.array_equal(b1, b2)


def test_training_schedules_have_a_partial_last_batch():
    for case in drawn_training_cases():
        n_samples = len(case.x)
        assert 5 <= n_samples <= 10
        sizes = {len(batch) for batch in case.batches}
        assert len(sizes) == 2, sizes  # full batches and the partial last one
        assert all(np.all((batch >= 0) & (batch < n_samples)) for batch in case.batches)


SHRINK = settings(database=None, derandomize=True, max_examples=200, suppress_health_check=list(HealthCheck))


def test_the_simplest_case_is_the_smallest_network():
    case = find(cases(), lambda case: True, settings=SHRINK)
    assert case.network == Network((1, 1), ("identity",), "mse", bias=False, reduction="mean")
    assert case.x.shape == (1, 1)
    assert all(not dead_rows(weight, bias).any() for weight, bias in case.params)


def test_shrinking_reaches_width_one_from_a_deep_relu_network():
    def deep_relu(case: Case) -> bool:
        return case.network.depth >= 3 and "relu" in case.network.activations

    case = find(cases(), deep_relu, settings=SHRINK)
    # Depth may stop at 4 (1-1-1-1-1): removing a layer takes two choices at once.
    # hnp.arrays-based strategies stopped there too.
    assert set(case.network.sizes) == {1} and len(case.x) == 1, case.network


def test_parameters_and_targets_alone_keep_their_bounds():
    network = Network((3, 4, 2), ("tanh", "sigmoid"), "bce", bias=True)
    for params in draw_many(parameters(network))[:50]:
        assert [w.shape for w, _ in params] == [(4, 3), (2, 4)]
        assert np.all(np.abs(params[0][0]) <= max(LAYER_SCALES))
        assert np.all(np.abs(params[1][0]) <= max(BCE_OUTPUT_SCALES))
    for y in draw_many(targets(network, 5))[:50]:
        assert y.shape == (5, 2) and np.all((y >= 0.0) & (y <= 1.0))


# -- the repro snippet: built on the failure path only ----------------------------------------


def test_a_failing_drawn_case_reports_its_repro_snippet():
    adapter = load_adapter("tests.broken_adapters:MissingActivationDerivative")

    @settings(max_examples=50, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def conformance_test(case):
        judge.check(adapter, case, compare_loss_and_gradients, quantity="gradient")

    with pytest.raises(ConformanceError) as failure:
        conformance_test()
    report = "\n".join(getattr(failure.value, "__notes__", []))
    assert "network: " in report
    snippet = report.split("repro:\n", 1)[1]
    assert snippet.startswith("import numpy as np")
    assert "load_adapter('tests.broken_adapters:MissingActivationDerivative')" in snippet
    assert "print(reference.loss_and_gradients(network, params, x, y))" in snippet


def test_passing_drawn_cases_build_no_snippet(monkeypatch):
    built = []
    monkeypatch.setattr(judge, "repro_snippet", lambda *arguments: built.append(arguments) or "")
    adapter = load_adapter("reference")

    @settings(max_examples=30, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases())
    def conformance_test(case):
        judge.check(adapter, case, compare_loss_and_gradients)

    conformance_test()
    assert built == []


def test_a_failing_explicit_case_puts_the_snippet_in_the_message():
    adapter = load_adapter("tests.broken_adapters:MissingActivationDerivative")
    network = Network((2, 3, 1), ("sigmoid", "identity"), "mse", bias=True)
    rng = np.random.default_rng(0)
    params = [(rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, 3)), (rng.uniform(-1, 1, (1, 3)), rng.uniform(-1, 1, 1))]
    case = Case(network, params, rng.uniform(-2, 2, (4, 2)), rng.uniform(-2, 2, (4, 1)))
    with pytest.raises(ConformanceError, match="repro:\nimport numpy as np"):
        judge.check(adapter, case, compare_loss_and_gradients, drawn=False)


class _InputScribblingAdapter:
    """Wrong gradients, and it writes into the x it is given: the repro must show x as it was."""

    name = "scribbler"

    def loss_and_gradients(self, network, params, x, y):
        from backprop_conformance import reference

        value, grads = reference.loss_and_gradients(network, params, x, y)
        x[...] = 1234.5
        return value, [(2.0 * weight, None if bias is None else 2.0 * bias) for weight, bias in grads]


def test_an_adapter_writing_into_its_input_fails_and_the_case_is_untouched():
    adapter = load_adapter(_InputScribblingAdapter())
    network = Network((2, 3, 1), ("tanh", "identity"), "mse", bias=False)
    rng = np.random.default_rng(1)
    params = [(rng.uniform(-1, 1, (3, 2)), None), (rng.uniform(-1, 1, (1, 3)), None)]
    case = Case(network, params, rng.uniform(-2, 2, (4, 2)), rng.uniform(-2, 2, (4, 1)))
    pristine = case.x.copy()
    with pytest.raises(AdapterModifiedInput, match=r"loss_and_gradients\(\) modified its input x in place"):
        judge.check(adapter, case, compare_loss_and_gradients, drawn=False)
    assert np.array_equal(case.x, pristine), "the adapter wrote into its own copy, never into the case"
