"""Mini-batch training over >= 2 shuffled epochs with a partial last batch follows the reference."""

from hypothesis import given

from backprop_conformance.suite.comparisons import compare_train
from backprop_conformance.suite.judge import check
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies import training_cases


@suite_test
@given(case=training_cases())
def test_training_trajectory(adapter, case):
    check(adapter, case, compare_train)
