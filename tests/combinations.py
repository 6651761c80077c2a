"""The activation pairs the adapters' unit tests go through: every pair of the documents' four, and each of the
others (and those with a parameter changed) once as the hidden and once as the output activation."""

from __future__ import annotations

from backprop_conformance.reference.conventions import REQUIRED_OUTPUT_ACTIVATION
from backprop_conformance.reference.specs import base
from backprop_conformance.suite.case import ACTIVATION_SPECS, LOSS_SPECS

CLASSIC = ("identity", "sigmoid", "tanh", "relu")
MODERN = tuple(spec for spec in ACTIVATION_SPECS if spec not in CLASSIC)


def hidden_output_pairs(loss: str) -> list[tuple[str, str]]:
    """Return the (hidden, output) activations to test with ``loss``; the output is fixed where the loss fixes it."""
    required = REQUIRED_OUTPUT_ACTIVATION[base(loss)]
    if required is not None:
        return [(hidden, required) for hidden in (*CLASSIC, *MODERN)]
    pairs = [(hidden, output) for hidden in CLASSIC for output in CLASSIC]
    return pairs + [(spec, "identity") for spec in MODERN] + [("tanh", spec) for spec in MODERN]


#: Every loss, with its parameters changed too.
LOSSES_TESTED = LOSS_SPECS
