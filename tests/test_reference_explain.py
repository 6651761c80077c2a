"""explain: one weight's gradient as a sum of chain-rule products, factor by factor.

Document 000 has one path from each weight to J; wider networks have one per
choice of unit in every later layer, and a batch has one set per sample.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

from backprop_conformance import reference
from backprop_conformance.reference import Network
from backprop_conformance.reference.seeds import example
from tests.strategies_reference import ALL_ACTIVATIONS, ROUNDING_FLOOR, draw_problem, gradient_magnitudes

EXPLAIN_TOLERANCE = 1e-13


def _parameter_names(params: reference.Params) -> list[str]:
    names = []
    for layer, (weight, bias) in enumerate(params, start=1):
        names += [f"W{layer}[{j},{k}]" for j, k in np.ndindex(weight.shape)]
        if bias is not None:
            names += [f"b{layer}[{j}]" for j in range(bias.size)]
    return names


def _backprop_entry(grads: reference.Params, name: str) -> float:
    kind, layer = name[0], int(name[1 : name.index("[")])
    index = tuple(int(i) for i in name[name.index("[") + 1 : -1].split(","))
    return float(grads[layer - 1][0 if kind == "W" else 1][index])


def _classifier() -> tuple[Network, reference.Params, np.ndarray, np.ndarray]:
    network = Network((3, 4, 3, 3), ("relu", "tanh", "identity"), "cross_entropy", reduction="sum")
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-0.3, 0.8, 0.1]])
    return network, reference.init_params(network, seed=11), x, np.array([2, 0, 1])


def _regression() -> tuple[Network, reference.Params, np.ndarray, np.ndarray]:
    network = Network((2, 3, 2), ("sigmoid", "identity"), "mse", reduction="mean")
    x = np.array([[0.5, -1.0], [1.5, 0.25]])
    return network, reference.init_params(network, seed=5), x, np.array([[0.3, -0.2], [1.0, 0.5]])


CASES = {
    "000 (2-3-1, one path)": lambda: (lambda e: (e.network, e.params, e.x, e.y))(example("000")),
    "001 (4-2-2-1, biases, 2 samples)": lambda: (lambda e: (e.network, e.params, e.x, e.y))(example("001")),
    "002 (2-4-4-1, 50 samples)": lambda: (lambda e: (e.network, e.params, e.x, e.y))(example("002")),
    "3-4-3-3 relu/tanh cross_entropy sum": _classifier,
    "2-3-2 sigmoid/identity mse mean": _regression,
}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_sum_of_the_terms_is_the_backprop_gradient_for_every_parameter(case):
    network, params, x, y = CASES[case]()
    _, grads = reference.loss_and_gradients(network, params, x, y)
    for name in _parameter_names(params):
        explanation = reference.explain(network, params, x, y, name)
        wanted = _backprop_entry(grads, name)
        assert explanation.gradient == pytest.approx(wanted, rel=EXPLAIN_TOLERANCE, abs=0.0), name
        assert explanation.backprop == pytest.approx(wanted, rel=1e-15, abs=0.0), name


@pytest.mark.parametrize("case", CASES, ids=str)
def test_there_is_one_term_per_sample_and_per_path_to_the_loss(case):
    network, params, x, y = CASES[case]()
    for name in _parameter_names(params):
        layer = int(name[1 : name.index("[")])
        paths = int(np.prod(network.sizes[layer + 1 :]))
        explanation = reference.explain(network, params, x, y, name)
        assert len(explanation.terms) == x.shape[0] * paths, name
        assert [term.sample for term in explanation.terms] == [s for s in range(x.shape[0]) for _ in range(paths)]
        # loss, then (activation, weight) per later layer, then activation and the local factor
        assert all(len(term.factors) == 2 * (network.depth - layer) + 3 for term in explanation.terms), name


def test_a_multi_path_term_lists_its_factors_from_the_loss_down_to_the_weight():
    seed = example("001")  # 4-2-2-1: W1[1,3] reaches J through both units of layer 2
    explanation = reference.explain(seed.network, seed.params, seed.x, seed.y, "W1[1,3]")
    (w1, _), (w2, _), (w3, _) = seed.params
    for term, (sample, unit) in zip(explanation.terms, itertools.product(range(2), range(2))):
        assert term.sample == sample
        labels, values = zip(*term.factors)
        assert labels == (
            "dJ/da3[0]",
            "da3[0]/dz3[0]",
            f"dz3[0]/da2[{unit}]",
            f"da2[{unit}]/dz2[{unit}]",
            "dz2[" + str(unit) + "]/da1[1]",
            "da1[1]/dz1[1]",
            "dz1[1]/dW1[1,3]",
        )
        assert values[2] == pytest.approx(w3[0, unit], rel=1e-15, abs=0.0)
        assert values[4] == pytest.approx(w2[unit, 1], rel=1e-15, abs=0.0)
        assert values[6] == pytest.approx(seed.x[sample, 3], rel=1e-15, abs=0.0)
        # mse mean over m * n_L = 2 outputs: dJ/da3 = 2 (a3 - y) / 2
        output = reference.forward(seed.network, seed.params, seed.x)[sample, 0]
        assert values[0] == pytest.approx(output - seed.y[sample, 0], rel=1e-14, abs=0.0)
    assert w1.shape == (2, 4)


def test_a_bias_is_named_like_b1_0_and_its_local_factor_is_1():
    seed = example("001")
    explanation = reference.explain(seed.network, seed.params, seed.x, seed.y, "b1[0]")
    assert explanation.weight == "b1[0]"
    assert all(term.factors[-1] == ("dz1[0]/db1[0]", 1.0) for term in explanation.terms)
    _, grads = reference.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    assert explanation.gradient == pytest.approx(grads[0][1][0], rel=EXPLAIN_TOLERANCE, abs=0.0)


def test_render_shows_the_weight_the_factors_and_both_sums():
    seed = example("000")
    text = reference.explain(seed.network, seed.params, seed.x, seed.y, seed.weight).render()
    assert text.splitlines()[0] == "dJ/dW1[0,1] in network 2-3-1 sigmoid/sigmoid bce mean, no bias"
    for label in ("dJ/da2[0]", "da2[0]/dz2[0]", "dz2[0]/da1[0]", "da1[0]/dz1[0]", "dz1[0]/dW1[0,1]"):
        assert label in text
    assert "sum of 1 term(s)" in text and "layer-wise backprop" in text


BAD_NAMES = {
    "W3[0,0]": r"weight='W3\[0,0\]': layer 3 is not in 1\.\.2",
    "W0[0,0]": r"weight='W0\[0,0\]': layer 0 is not in 1\.\.2",
    "W1[5,0]": r"weight='W1\[5,0\]': index \[5, 0\] is outside W1's shape \(3, 2\)",
    "W1[0]": r"weight='W1\[0\]': index \[0\] is outside W1's shape \(3, 2\)",
    "b1[0]": r"weight='b1\[0\]': the network has no biases",
    "theta1": r"weight='theta1' is not of the form 'W1\[0,1\]' or 'b1\[0\]'",
    "W1[-1,0]": r"weight='W1\[-1,0\]' is not of the form",
}


@pytest.mark.parametrize("name", BAD_NAMES, ids=str)
def test_a_bad_weight_name_is_refused_naming_it(name):
    seed = example("000")
    with pytest.raises(ValueError, match=BAD_NAMES[name]):
        reference.explain(seed.network, seed.params, seed.x, seed.y, name)


def test_a_weight_name_that_is_not_a_string_is_refused_naming_it():
    seed = example("000")
    with pytest.raises(ValueError, match=r"weight=7 is not of the form"):
        reference.explain(seed.network, seed.params, seed.x, seed.y, 7)


def test_a_bias_index_with_two_numbers_is_refused():
    seed = example("001")
    with pytest.raises(ValueError, match=r"weight='b1\[0,1\]': index \[0, 1\] is outside b1's shape \(2,\)"):
        reference.explain(seed.network, seed.params, seed.x, seed.y, "b1[0,1]")


def test_too_many_terms_are_refused_naming_the_weight_and_the_count():
    network = Network((1, 6, 6, 6, 6), "tanh", "mse")
    x, y = np.linspace(-1.0, 1.0, 20)[:, None], np.zeros((20, 6))
    with pytest.raises(ValueError, match=r"weight='W1\[0,0\]' has 4320 chain-rule terms"):
        reference.explain(network, reference.init_params(network, seed=0), x, y, "W1[0,0]")


@given(data=st.data())
def test_the_sum_of_the_terms_is_the_backprop_gradient_on_drawn_networks(data):
    problem = draw_problem(data, ALL_ACTIVATIONS, max_depth=3, max_width=4, max_batch=3)
    if problem.network.loss_name in ("bce", "bce_with_logits"):
        # explain's Step 1 factor dJ/da = -(y/a - (1-y)/(1-a)) needs 0 < a < 1 in float64
        outputs = problem.outputs()
        assume(bool(np.all((outputs > 0.0) & (outputs < 1.0))))
    name = data.draw(st.sampled_from(_parameter_names(problem.params)), label="weight")
    note(problem.repro())
    explanation = reference.explain(problem.network, problem.params, problem.x, problem.y, name)
    _, grads = reference.loss_and_gradients(problem.network, problem.params, problem.x, problem.y)
    wanted = _backprop_entry(grads, name)
    # A sum of terms that cancel is only good to eps times the sum of their
    # magnitudes (the forward error bound of a sum), whichever order it is summed in.
    floor = ROUNDING_FLOOR * _backprop_entry(gradient_magnitudes(problem), name)
    assert abs(explanation.gradient - wanted) <= max(EXPLAIN_TOLERANCE * abs(wanted), floor), (
        f"{name}: terms sum to {explanation.gradient!r}, backprop gives {wanted!r} ({problem.describe()})"
    )
