"""Why a comparison failed: which named variant of the reference the adapter's numbers match.

Runs only when a comparison has failed (a passing case costs nothing). For
each variant of ``suite.variants`` that applies to the case and can change
the compared quantities, the variant's values are computed and the
adapter's arrays measured against them with the allowance the exact
comparison used, or the tolerance model's bounds for a pass of the
variant's own pieces where those are larger (times the variant's
``tolerance``); a variant computed in float32 must also be exactly what
float32 can represent. A variant matches
when every array of the comparison passes: so a wrong loss beside right
gradients is not "mse with a factor 1/2", which changes both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from backprop_conformance.reference.backprop import REFERENCE_RULES, _backprop, _forward
from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.optimizer_rules import init_state, optimizer_update
from backprop_conformance.reference.training import _sgd_update
from backprop_conformance.suite.assertions import Measurement, measure
from backprop_conformance.suite.case import Case
from backprop_conformance.suite.tolerances import SAFETY, error_bounds, update_bounds
from backprop_conformance.suite.variants import CATALOGUE, Variant

#: What each comparison measures, for the variants that can change it.
COMPARED = {
    "forward": frozenset({"output"}),
    "loss_and_gradients": frozenset({"loss", "gradient"}),
    "sgd_step": frozenset({"update"}),
    "train": frozenset({"trajectory"}),
}


def _cast(params: Params, x: np.ndarray, y: np.ndarray, dtype: str) -> tuple[Params, np.ndarray, np.ndarray]:
    cast = [(w.astype(dtype), None if b is None else b.astype(dtype)) for w, b in params]
    return cast, x.astype(dtype), y if y.dtype.kind in "iu" else y.astype(dtype)

def loss_and_gradients(variant: Variant, network: Network, params: Params, x: np.ndarray, y: np.ndarray,
                       dtype: str) -> tuple[float, Params]:
    """Return the variant's (J, grads) for one batch, in float64."""
    rules = variant.rules(dtype, network) if variant.rules else REFERENCE_RULES
    if variant.dtype is not None:
        params, x, y = _cast(params, x, y, variant.dtype)
    with np.errstate(all="ignore"):  # a variant may take log(0): its numbers are compared, not trusted
        value, arrays = _backprop(network, params, x, y, rules=rules)
    grads = [(w.astype(np.float64), None if b is None else b.astype(np.float64)) for w, b in arrays.grads]
    if variant.grads is not None:
        grads = variant.grads(network, grads, len(x))
    return float(value), grads


def _rate(variant: Variant, learning_rate: float) -> float:
    return variant.learning_rate(learning_rate) if variant.learning_rate else learning_rate


def train(variant: Variant, case: Case, dtype: str) -> tuple[np.ndarray, Params]:
    """Return the variant's per-iteration losses and final params over the case's schedule (with the case's
    optimizer, or the variant's own version of it, where the case has one)."""
    batches = variant.schedule(case.batches) if variant.schedule else case.batches
    params, accumulated, losses = case.params, None, []
    optimizer = case.optimizer
    if optimizer is not None and variant.learning_rate is not None:  # the variant's rate, in the optimizer
        optimizer = dataclasses.replace(optimizer, lr=_rate(variant, optimizer.lr))
    update = variant.update or optimizer_update
    state = None if optimizer is None else init_state(optimizer, params)
    for batch in batches:
        value, grads = loss_and_gradients(variant, case.network, params, case.x[batch], case.y[batch], dtype)
        losses.append(value)
        if variant.accumulate:
            accumulated = grads if accumulated is None else [
                (w + aw, None if b is None else b + ab) for (w, b), (aw, ab) in zip(grads, accumulated)
            ]
            grads = accumulated
        if optimizer is None:
            params = _sgd_update(params, grads, _rate(variant, case.learning_rate))
        else:
            with np.errstate(all="ignore"):
                params, state = update(optimizer, state, params, grads)
    return np.array(losses), params


def named(params: Params) -> dict[str, np.ndarray]:
    """Return the arrays of ``params`` by the measurements' names: ``W1``, ``b1``, ``W2``, ..."""
    arrays = {}
    for layer, (weight, bias) in enumerate(params, start=1):
        arrays[parameter_name(layer, "W")] = weight
        if bias is not None:
            arrays[parameter_name(layer, "b")] = bias
    return arrays


def expected(variant: Variant, case: Case, call: str, dtype: str) -> dict[str, np.ndarray]:
    """Return the variant's value of every array ``call``'s comparison measures, by measurement name."""
    if call == "forward":
        rules = variant.rules(dtype, case.network) if variant.rules else REFERENCE_RULES
        with np.errstate(all="ignore"):
            _, activations = _forward(case.network, case.params, case.x, rules=rules)
        return {"a_L": activations[-1].astype(np.float64)}
    if call == "loss_and_gradients":
        value, grads = loss_and_gradients(variant, case.network, case.params, case.x, case.y, dtype)
        return {"J": np.float64(value), **named(grads)}
    if call == "sgd_step":
        _, grads = loss_and_gradients(variant, case.network, case.params, case.x, case.y, dtype)
        return named(_sgd_update(case.params, grads, _rate(variant, case.learning_rate)))
    losses, params = train(variant, case, dtype)
    return {"losses": losses, **named(params)}


def _representable(measurements: Sequence[Measurement], dtype: str) -> bool:
    for measurement in measurements:
        values = np.asarray(measurement.actual, dtype=np.float64)
        if not np.array_equal(values.astype(dtype).astype(np.float64), values):
            return False
    return True


def _allowances(variant: Variant, case: Case, call: str, dtype: str,
                measurements: Sequence[Measurement]) -> dict[str, np.ndarray]:
    """Return the allowance per measured array.

    A variant computed in its own dtype gets the model's bounds in that
    dtype. A variant with its own pieces gets the larger of the
    comparison's allowance and the model's bounds for a pass of those
    pieces: its gradients may be far larger than the reference's
    (leaky_relu'(0) = 1 against the slope 0.01), and so is their rounding.
    """
    comparison = {m.name: m.allowed_array for m in measurements}
    if variant.dtype is None and variant.rules is None:
        return comparison
    rules = variant.rules(dtype, case.network) if variant.rules else REFERENCE_RULES
    bounds = error_bounds(case.network, case.params, case.x, case.y, variant.dtype or dtype, rules=rules)
    scaled = [(SAFETY * w, None if b is None else SAFETY * b) for w, b in bounds.grads]
    if call == "forward":
        own = {"a_L": SAFETY * bounds.output}
    elif call == "sgd_step":
        _, grads = loss_and_gradients(variant, case.network, case.params, case.x, case.y, dtype)
        update = update_bounds(case.params, grads, bounds, _rate(variant, case.learning_rate))
        own = named([(SAFETY * w, None if b is None else SAFETY * b) for w, b in update])
    else:  # the loss and gradients; a trajectory keeps the comparison's allowance
        own = {"J": np.float64(SAFETY * bounds.loss), **named(scaled)} if call == "loss_and_gradients" else {}
    if variant.dtype is not None:
        return own
    return {name: np.maximum(allowed, own[name]) if name in own and np.shape(own[name]) == np.shape(allowed)
            else allowed for name, allowed in comparison.items()}


def matches(variant: Variant, case: Case, call: str, dtype: str, measurements: Sequence[Measurement]) -> bool:
    """Return whether every measured array agrees with ``variant`` within its allowance (``_allowances``)."""
    if any(m.actual is None or m.allowed_array is None for m in measurements):
        return False
    if variant.dtype is not None and not _representable(measurements, variant.dtype):
        return False
    wanted, allowed = expected(variant, case, call, dtype), _allowances(variant, case, call, dtype, measurements)
    for m in measurements:
        if m.name not in wanted or m.name not in allowed:
            return False
        again = measure(m.actual, wanted[m.name], variant.tolerance * allowed[m.name], adapter=m.adapter,
                        dtype=m.dtype, quantity=m.quantity, name=m.name, network=case.network)
        if not again.passed:
            return False
    return True


def diagnose(case: Case, call: str, dtype: str, measurements: Sequence[Measurement],
             catalogue: Sequence[Variant] = CATALOGUE) -> list[Variant]:
    """Return the variants (in catalogue order) whose values the adapter's numbers match; [] when none does."""
    compared = COMPARED.get(call)
    if not compared or not measurements:
        return []
    found = []
    for variant in catalogue:
        if variant.changes & compared and variant.applies(case, dtype):
            try:
                if matches(variant, case, call, dtype, measurements):
                    found.append(variant)
            except (ValueError, FloatingPointError):  # a variant that cannot be computed here explains nothing
                continue
    return found


def diagnosis_text(found: Sequence[Variant]) -> str:
    """Return the sentence a failure message ends with, naming the variants found."""
    return "differs from exact math; matches the reference with " + ", or with ".join(v.says() for v in found)


def explain_failure(case: Case, call: str, dtype: str, measurements: Sequence[Measurement],
                    conventions: Sequence[str] = ()) -> tuple[list[Variant], Variant | None]:
    """Return the variants a failing comparison matches, and the first that is one of ``conventions``."""
    found = diagnose(case, call, dtype, measurements)
    return found, next((variant for variant in found if variant.name in conventions), None)
