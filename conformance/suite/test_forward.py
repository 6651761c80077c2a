"""Forward outputs a_L agree with the reference."""

from hypothesis import given

from backprop_conformance.suite.comparisons import compare_forward
from backprop_conformance.suite.judge import check, require_method
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies import cases


@suite_test
@given(case=cases())
def test_forward_output(adapter, case):
    require_method(adapter, "forward")
    check(adapter, case, compare_forward)
