"""What the optimizer strategies draw: optax's centered RMSprop with bias correction only where it is well-posed."""

from __future__ import annotations

from hypothesis import HealthCheck, find, given, settings

from backprop_conformance.suite.strategies_optimizers import MIN_CENTERED_CORRECTED_SCALE, optimizers


def _paired(o) -> bool:
    return o.name == "rmsprop" and bool(o.centered) and bool(o.bias_correction)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(optimizers("optax", ("rmsprop",)))
def test_centered_with_bias_correction_is_drawn_only_from_an_initial_scale_of_0_01(o):
    # below it, step 1's variance alpha initial_scale / (1 - alpha) is a rounding residue for optax (g^2 - g^2)
    if _paired(o):
        assert o.initial_scale >= MIN_CENTERED_CORRECTED_SCALE


def test_centered_with_bias_correction_is_drawn():
    found = find(optimizers("optax", ("rmsprop",)), _paired, settings=settings(max_examples=2000))
    assert found.initial_scale >= MIN_CENTERED_CORRECTED_SCALE
