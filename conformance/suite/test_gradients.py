"""Gradients dJ/dW and dJ/db agree with the reference, entry by entry."""

from hypothesis import given

from backprop_conformance.suite.comparisons import compare_loss_and_gradients
from backprop_conformance.suite.judge import check
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies import cases


@suite_test
@given(case=cases())
def test_gradients(adapter, case):
    check(adapter, case, compare_loss_and_gradients, quantity="gradient")
