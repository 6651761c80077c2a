"""Mini-batch training over >= 2 shuffled epochs with a partial last batch follows the reference."""

from hypothesis import given

from conformance.comparisons import compare_train
from conformance.strategies import training_cases
from conformance.suite import check


@given(case=training_cases())
def test_training_trajectory(adapter, case):
    check(adapter, case, compare_train)
