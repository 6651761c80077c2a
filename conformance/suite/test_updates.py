"""One gradient-descent step gives the reference's params."""

from hypothesis import given

from backprop_conformance.suite.comparisons import compare_sgd_step
from backprop_conformance.suite.judge import check
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies import cases


@suite_test
@given(case=cases())
def test_sgd_step(adapter, case):
    check(adapter, case, compare_sgd_step)
