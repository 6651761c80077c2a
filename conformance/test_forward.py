"""Forward outputs a_L agree with the reference."""

from hypothesis import given

from conformance.comparisons import compare_forward
from conformance.strategies import cases
from conformance.suite import check, require_method


@given(case=cases())
def test_forward_output(adapter, case):
    require_method(adapter, "forward")
    check(adapter, case, compare_forward)
