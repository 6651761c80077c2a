"""Loss values agree with the reference, for every loss and reduction."""

from hypothesis import given

from conformance.comparisons import compare_loss_and_gradients
from conformance.strategies import cases
from conformance.suite import check


@given(case=cases())
def test_loss_value(adapter, case):
    check(adapter, case, compare_loss_and_gradients, quantity="loss")
