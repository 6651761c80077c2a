"""Document 000's 2-3-1 network, Steps 1-4 of its chain rule, number by number.

The network: inputs x1, x2; three sigmoid hidden nodes a1j = sigmoid(h1j),
h1j = sum_i theta1(j,i) x_i; one sigmoid output Y = sigmoid(h2),
h2 = sum_j theta2j a1j; no biases; J the binary cross-entropy (with its minus
sign, see test_reference_errata.py). In the reference, theta1 is W1 (3, 2),
theta1(j, i) = W1[j, i], and theta2 is W2 (1, 3), theta2j = W2[0, j].
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from backprop_conformance import reference
from backprop_conformance.reference import Network
from backprop_conformance.reference.seeds import example

NETWORK_000 = Network((2, 3, 1), ("sigmoid", "sigmoid"), "bce", bias=False)

# --- (a) weights at which every chain factor is an exact binary fraction ----
#
# theta1 = 0 makes every h1j = 0, so a1j = 1/2 and sigmoid'(h1j) = 1/4.
# theta2 = (1/2, -3/4, 1/4) sums to 0, so h2 = (1/2)(1/2 - 3/4 + 1/4) = 0,
# Y = 1/2 and sigmoid'(h2) = 1/4. With Y* = 1:
#   Step 1  dJ/dY = -(Y*/Y - (1 - Y*)/(1 - Y)) = -2
#   Step 2  dY/dh2 = 1/4,  dh2/dtheta2j = a1j = 1/2,  dJ/dtheta2j = -2 * 1/4 * 1/2 = -1/4
#   Step 3  dh2/da1j = theta2j
#   Step 4  da1j/dh1j = 1/4,  dh1j/dtheta1(j,i) = x_i,
#           dJ/dtheta1(j,i) = -2 * 1/4 * theta2j * 1/4 * x_i = -theta2j x_i / 8
# Every number here, and every intermediate the reference computes from
# them, is a dyadic fraction with few bits: float64 holds them exactly and
# the arithmetic on them is exact, so == against Fractions is the right check
# (a Python float compares with a Fraction exactly, without rounding).
EXACT_THETA2 = (Fraction(1, 2), Fraction(-3, 4), Fraction(1, 4))
EXACT_X = (Fraction(3, 4), Fraction(-1, 2))
DJ_DY = Fraction(-2)
DY_DH2 = Fraction(1, 4)
A1 = Fraction(1, 2)
DA1_DH1 = Fraction(1, 4)


def _exact_case() -> tuple[list, np.ndarray, np.ndarray]:
    params = [
        (np.zeros((3, 2)), None),
        (np.array([[float(t) for t in EXACT_THETA2]]), None),
    ]
    return params, np.array([[float(v) for v in EXACT_X]]), np.array([[1.0]])


def test_exact_case_loss_is_log_2():
    params, x, y = _exact_case()
    # J = -(1 * log(1/2) + 0 * log(1/2)) = log 2, up to one rounding of the log.
    assert reference.loss(NETWORK_000, params, x, y) == pytest.approx(math.log(2.0), rel=1e-15, abs=0.0)


def test_exact_case_gradients_are_the_hand_derived_fractions():
    params, x, y = _exact_case()
    _, grads = reference.loss_and_gradients(NETWORK_000, params, x, y)
    (d_theta1, no_bias1), (d_theta2, no_bias2) = grads
    assert no_bias1 is None and no_bias2 is None
    for j in range(3):
        assert float(d_theta2[0, j]) == DJ_DY * DY_DH2 * A1 == Fraction(-1, 4)
        for i in range(2):
            expected = DJ_DY * DY_DH2 * EXACT_THETA2[j] * DA1_DH1 * EXACT_X[i]
            assert expected == -EXACT_THETA2[j] * EXACT_X[i] / 8
            assert float(d_theta1[j, i]) == expected, f"dJ/dtheta1({j},{i})"


@pytest.mark.parametrize("j", range(3))
def test_exact_case_explains_dJ_dtheta2_as_steps_1_and_2(j):
    params, x, y = _exact_case()
    explanation = reference.explain(NETWORK_000, params, x, y, f"W2[0,{j}]")
    (term,) = explanation.terms
    assert term.sample == 0
    assert term.factors == (
        ("dJ/da2[0]", DJ_DY),  # Step 1: dJ/dY
        ("da2[0]/dz2[0]", DY_DH2),  # Step 2: dY/dh2
        (f"dz2[0]/dW2[0,{j}]", A1),  # Step 2: dh2/dtheta2j = a1j
    )
    assert explanation.gradient == Fraction(-1, 4)
    assert explanation.backprop == Fraction(-1, 4)


@pytest.mark.parametrize(("j", "i"), [(j, i) for j in range(3) for i in range(2)])
def test_exact_case_explains_dJ_dtheta1_as_steps_1_to_4(j, i):
    params, x, y = _exact_case()
    explanation = reference.explain(NETWORK_000, params, x, y, f"W1[{j},{i}]")
    (term,) = explanation.terms
    assert term.factors == (
        ("dJ/da2[0]", DJ_DY),  # Step 1: dJ/dY
        ("da2[0]/dz2[0]", DY_DH2),  # Step 2: dY/dh2
        (f"dz2[0]/da1[{j}]", EXACT_THETA2[j]),  # Step 3: dh2/da1j = theta2j
        (f"da1[{j}]/dz1[{j}]", DA1_DH1),  # Step 4: da1j/dh1j
        (f"dz1[{j}]/dW1[{j},{i}]", EXACT_X[i]),  # Step 4: dh1j/dtheta1(j,i) = x_i
    )
    assert explanation.gradient == -EXACT_THETA2[j] * EXACT_X[i] / 8


# --- (b) the document's example, every factor recomputed with math.exp ------


def _sigmoid(h: float) -> float:
    return 1.0 / (1.0 + math.exp(-h))


def _sigmoid_slope(h: float) -> float:
    """Document 000's Steps 2 and 4: exp(-h) / (1 + exp(-h))^2."""
    return math.exp(-h) / (1.0 + math.exp(-h)) ** 2


class _ByHand:
    """Document 000's forward pass and Steps 1-4, in scalars, for example("000")."""

    def __init__(self) -> None:
        seed = example("000")
        self.theta1 = [[float(v) for v in row] for row in seed.params[0][0]]
        self.theta2 = [float(v) for v in seed.params[1][0][0]]
        self.x = [float(v) for v in seed.x[0]]
        self.target = float(seed.y[0, 0])
        self.h1 = [sum(self.theta1[j][i] * self.x[i] for i in range(2)) for j in range(3)]
        self.a1 = [_sigmoid(h) for h in self.h1]
        self.h2 = sum(self.theta2[j] * self.a1[j] for j in range(3))
        self.output = _sigmoid(self.h2)
        y, target = self.output, self.target
        self.loss = -(target * math.log(y) + (1.0 - target) * math.log(1.0 - y))
        self.dJ_dY = -(target / y + (1.0 - target) / (y - 1.0))  # Step 1, minus sign restored
        self.dY_dh2 = _sigmoid_slope(self.h2)  # Step 2
        self.dh2_da1 = self.theta2  # Step 3
        self.da1_dh1 = [_sigmoid_slope(h) for h in self.h1]  # Step 4

    def dJ_dtheta2(self, j: int) -> float:
        return self.dJ_dY * self.dY_dh2 * self.a1[j]

    def dJ_dtheta1(self, j: int, i: int) -> float:
        return self.dJ_dY * self.dY_dh2 * self.dh2_da1[j] * self.da1_dh1[j] * self.x[i]


def test_example_000_loss_matches_the_hand_computation():
    seed, by_hand = example("000"), _ByHand()
    assert reference.loss(seed.network, seed.params, seed.x, seed.y) == pytest.approx(by_hand.loss, rel=1e-14, abs=0.0)


def test_example_000_gradients_match_the_hand_computation():
    seed, by_hand = example("000"), _ByHand()
    _, ((d_theta1, _), (d_theta2, _)) = reference.loss_and_gradients(seed.network, seed.params, seed.x, seed.y)
    for j in range(3):
        assert d_theta2[0, j] == pytest.approx(by_hand.dJ_dtheta2(j), rel=1e-14, abs=0.0), f"dJ/dtheta2{j}"
        for i in range(2):
            assert d_theta1[j, i] == pytest.approx(by_hand.dJ_dtheta1(j, i), rel=1e-14, abs=0.0), f"dJ/dtheta1({j},{i})"


@pytest.mark.parametrize(("j", "i"), [(j, i) for j in range(3) for i in range(2)])
def test_example_000_explain_gives_steps_1_to_4_factor_by_factor(j, i):
    seed, by_hand = example("000"), _ByHand()
    explanation = reference.explain(seed.network, seed.params, seed.x, seed.y, f"W1[{j},{i}]")
    (term,) = explanation.terms
    expected = [
        ("dJ/da2[0]", by_hand.dJ_dY),
        ("da2[0]/dz2[0]", by_hand.dY_dh2),
        (f"dz2[0]/da1[{j}]", by_hand.dh2_da1[j]),
        (f"da1[{j}]/dz1[{j}]", by_hand.da1_dh1[j]),
        (f"dz1[{j}]/dW1[{j},{i}]", by_hand.x[i]),
    ]
    assert [label for label, _ in term.factors] == [label for label, _ in expected]
    for (label, value), (_, wanted) in zip(term.factors, expected):
        assert value == pytest.approx(wanted, rel=1e-14, abs=0.0), label
    assert explanation.gradient == pytest.approx(by_hand.dJ_dtheta1(j, i), rel=1e-14, abs=0.0)


@pytest.mark.parametrize("j", range(3))
def test_example_000_explain_gives_dJ_dtheta2_factor_by_factor(j):
    seed, by_hand = example("000"), _ByHand()
    explanation = reference.explain(seed.network, seed.params, seed.x, seed.y, f"W2[0,{j}]")
    (term,) = explanation.terms
    expected = [
        ("dJ/da2[0]", by_hand.dJ_dY),
        ("da2[0]/dz2[0]", by_hand.dY_dh2),
        (f"dz2[0]/dW2[0,{j}]", by_hand.a1[j]),
    ]
    assert [label for label, _ in term.factors] == [label for label, _ in expected]
    for (label, value), (_, wanted) in zip(term.factors, expected):
        assert value == pytest.approx(wanted, rel=1e-14, abs=0.0), label


def test_example_000_traces_the_weight_the_document_traces():
    seed = example("000")
    assert seed.network == NETWORK_000
    assert seed.weight == "W1[0,1]"
    assert seed.params[0][0].shape == (3, 2) and seed.params[1][0].shape == (1, 3)
