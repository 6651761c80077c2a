"""Training with an optimizer (momentum, Nesterov, weight decay, Adam, AdamW, AMSGrad, RMSprop, Adagrad) over
>= 10 steps of >= 3 shuffled epochs follows the reference in the adapter's own convention.

An adapter whose ``train`` takes no optimizer is plain-SGD only: the test is
skipped with that reason (``adapters.optimizer_support``).
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backprop_conformance.adapters.optimizer_support import SGD_ONLY, optimizer_conventions, takes_optimizer
from backprop_conformance.suite import session
from backprop_conformance.suite.comparisons import compare_optimizer_train
from backprop_conformance.suite.judge import check
from backprop_conformance.suite.profiles import suite_test
from backprop_conformance.suite.strategies_optimizers import optimizer_cases


def _conventions(adapter) -> tuple[str, ...]:
    train = getattr(adapter.implementation, "train", None)
    if not callable(train) or not takes_optimizer(train):
        session.record_not_applicable("trajectory", f"optimizers: {SGD_ONLY}")
        pytest.skip(f"not applicable: {SGD_ONLY}")
    return optimizer_conventions(adapter.implementation)


@suite_test
@given(data=st.data())
def test_optimizer_trajectory(adapter, data):
    convention = data.draw(st.sampled_from(_conventions(adapter)), label="convention")
    case = data.draw(optimizer_cases(convention), label="case")
    check(adapter, case, compare_optimizer_train)
