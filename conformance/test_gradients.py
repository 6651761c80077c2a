"""Gradients dJ/dW and dJ/db agree with the reference, entry by entry."""

from hypothesis import given

from conformance.comparisons import compare_loss_and_gradients
from conformance.strategies import cases
from conformance.suite import check


@given(case=cases())
def test_gradients(adapter, case):
    check(adapter, case, compare_loss_and_gradients, quantity="gradient")
