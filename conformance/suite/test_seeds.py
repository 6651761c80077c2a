"""The three documents' networks, as explicit cases, through every quantity."""

import pytest

from backprop_conformance.reference.seeds import EXAMPLES, example
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.comparisons import (
    compare_forward,
    compare_loss_and_gradients,
    compare_sgd_step,
    compare_train,
)
from backprop_conformance.suite.judge import check


def _case(key: str) -> Case:
    document = example(key)
    return Case(document.network, document.params, document.x, document.y, document.learning_rate, document.batches,
                source=key)


@pytest.mark.parametrize("key", list(EXAMPLES))
@pytest.mark.parametrize(
    "compare", [compare_forward, compare_loss_and_gradients, compare_sgd_step, compare_train], ids=lambda f: f.__name__
)
def test_document_network(adapter, key, compare):
    if compare is compare_forward and not adapter.supports("forward"):
        pytest.skip(f"adapter {adapter.label!r} has no forward()")
    check(adapter, _case(key), compare, drawn=False)
