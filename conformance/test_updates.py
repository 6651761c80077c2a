"""One gradient-descent step gives the reference's params."""

from hypothesis import given

from conformance.comparisons import compare_sgd_step
from conformance.strategies import cases
from conformance.suite import check


@given(case=cases())
def test_sgd_step(adapter, case):
    check(adapter, case, compare_sgd_step)
