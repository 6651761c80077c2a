"""Loss values agree with the reference, for every loss and reduction."""

from hypothesis import given

from backprop_conformance.suite.comparisons import compare_loss_and_gradients
from backprop_conformance.suite.judge import check
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies import cases


@suite_test
@given(case=cases())
def test_loss_value(adapter, case):
    check(adapter, case, compare_loss_and_gradients, quantity="loss")
