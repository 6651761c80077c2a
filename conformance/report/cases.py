"""The report's first stage, cases: the networks of the sweep.

The three documents' networks plus ``examples`` networks drawn from
``numpy.random.default_rng(seed)`` (not Hypothesis: the same seed gives the
same networks everywhere), stratified over depth, width, activation, loss,
reduction, bias and batch schedule.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backprop_conformance.reference.conventions import REDUCTIONS, REQUIRED_OUTPUT_ACTIVATION
from backprop_conformance.reference.network import Network, Params
from backprop_conformance.reference.seeds import EXAMPLES, example
from backprop_conformance.reference.specs import base
from backprop_conformance.reference.training import batch_schedule
from backprop_conformance.suite.case import ACTIVATION_SPECS, BCE_OUTPUT_SCALES, LAYER_SCALES, LOSS_SPECS, Case

#: Sampled networks by default: every loss spec x reduction x bias once; the run stays near a minute on 2 cores.
DEFAULT_EXAMPLES = 28
# The strata of the sampled networks (each level appears equally often, +-1).
LOSS_REDUCTION_BIAS = tuple(itertools.product(LOSS_SPECS, REDUCTIONS, (True, False)))
DEPTHS = (1, 2, 3, 4, 5)
WIDTH_BANDS = ((1, 4), (5, 10), (11, 16))
SCHEDULE_KINDS = ("partial", "exact", "drop_last")
#: Sample counts whose divisors allow an exact schedule with batches of >= 2.
EXACT_SAMPLE_COUNTS = (6, 8, 9, 10)


@dataclass(frozen=True)
class SweepCase:
    """One network of the sweep: an id, where it comes from, and the case itself."""

    identifier: str
    source: str
    case: Case


def document_cases() -> list[SweepCase]:
    """Return the three documents' examples as sweep cases ``doc-000`` .. ``doc-002``."""
    cases = []
    for key in EXAMPLES:
        document = example(key)
        case = Case(document.network, document.params, document.x, document.y, document.learning_rate,
                    document.batches, source=key)
        cases.append(SweepCase(f"doc-{key}", f"document {key}: {document.title}", case))
    return cases


def _stratified(rng: np.random.Generator, levels: Sequence[Any], count: int) -> list[Any]:
    """Return ``count`` levels, each count // len(levels) or one more times, in a seeded order."""
    order = rng.permutation(np.resize(np.arange(len(levels)), count))
    return [levels[int(index)] for index in order]


def _sampled_network(
    rng: np.random.Generator, combination: tuple[str, str, bool], depth: int, band: tuple[int, int], activation: str
) -> Network:
    """Return a network of ``depth`` layers, widths in ``band``, ``activation`` in its first layer."""
    loss, reduction, bias = combination
    sizes = [int(width) for width in rng.integers(band[0], band[1] + 1, size=depth + 1)]
    if base(loss) == "cross_entropy":
        sizes[-1] = max(sizes[-1], 2)
    activations = [activation] + [str(name) for name in rng.choice(ACTIVATION_SPECS, size=depth - 1)]
    activations[-1] = REQUIRED_OUTPUT_ACTIVATION[base(loss)] or activations[-1]
    return Network(tuple(sizes), tuple(activations), loss, bias=bias, reduction=reduction)


def _sampled_params(rng: np.random.Generator, network: Network) -> Params:
    """Return params uniform in [-1, 1] times a per-layer scale (bce's output layer stays smaller)."""
    params: Params = []
    for layer in range(1, network.depth + 1):
        last_bce = network.loss_name == "bce" and layer == network.depth
        scale = float(rng.choice(BCE_OUTPUT_SCALES if last_bce else LAYER_SCALES))
        shape = (network.sizes[layer], network.sizes[layer - 1])
        weight = rng.uniform(-1.0, 1.0, size=shape) * scale
        bias = rng.uniform(-1.0, 1.0, size=shape[0]) * scale if network.bias else None
        params.append((weight, bias))
    return params


def _sampled_schedule(rng: np.random.Generator, kind: str) -> tuple[int, list[np.ndarray]]:
    """Return (sample count, schedule): 2-3 shuffled epochs with a partial, exact or dropped last batch."""
    if kind == "exact":
        n_samples = int(rng.choice(EXACT_SAMPLE_COUNTS))
        sizes = [b for b in range(2, n_samples) if n_samples % b == 0]
    else:
        n_samples = int(rng.integers(5, 11))
        sizes = [b for b in range(2, n_samples) if n_samples % b != 0]
    batch_size = int(rng.choice(sizes))
    epochs = int(rng.integers(2, 4))
    seed = int(rng.integers(2**32))
    return n_samples, batch_schedule(n_samples, batch_size, epochs, seed=seed, drop_last=kind == "drop_last")


def _sampled_targets(rng: np.random.Generator, network: Network, n_samples: int) -> np.ndarray:
    """Return targets for the loss: floats in [-2, 2], probabilities (half the time hard 0/1), or classes."""
    n_out = network.sizes[-1]
    if network.loss_name == "cross_entropy":
        return rng.integers(0, n_out, size=n_samples)
    if network.loss_name in ("bce", "bce_with_logits"):
        hard = bool(rng.integers(2))
        return rng.integers(0, 2, size=(n_samples, n_out)).astype(np.float64) if hard else rng.uniform(
            0.0, 1.0, size=(n_samples, n_out)
        )
    return rng.uniform(-2.0, 2.0, size=(n_samples, n_out))


def sampled_cases(seed: int, examples: int) -> list[SweepCase]:
    """Return ``examples`` seeded sweep cases ``sample-01`` ..., stratified over every factor.

    loss x reduction x bias cycle in a fixed order; depth, width band,
    first-layer activation and schedule kind are balanced and shuffled.
    """
    rng = np.random.default_rng(seed)
    depths = _stratified(rng, DEPTHS, examples)
    bands = _stratified(rng, WIDTH_BANDS, examples)
    activations = _stratified(rng, ACTIVATION_SPECS, examples)
    kinds = _stratified(rng, SCHEDULE_KINDS, examples)
    digits = max(2, len(str(examples)))
    cases = []
    for index in range(examples):
        network = _sampled_network(
            rng, LOSS_REDUCTION_BIAS[index % len(LOSS_REDUCTION_BIAS)], depths[index], bands[index], activations[index]
        )
        params = _sampled_params(rng, network)
        n_samples, batches = _sampled_schedule(rng, kinds[index])
        x = rng.uniform(-2.0, 2.0, size=(n_samples, network.sizes[0]))
        y = _sampled_targets(rng, network, n_samples)
        learning_rate = float(10 ** rng.uniform(-3.0, -1.0))
        case = Case(network, params, x, y, learning_rate, batches)
        cases.append(SweepCase(f"sample-{index + 1:0{digits}d}", f"sampled (seed {seed})", case))
    return cases


def _schedule_kind(n_samples: int, batches: Sequence[np.ndarray]) -> str:
    """Return how the schedule ends an epoch: ``partial`` batch, ``exact`` division or ``drop_last``."""
    sizes = [len(batch) for batch in batches]
    largest = max(sizes)
    if min(sizes) < largest:
        return "partial"
    return "exact" if n_samples % largest == 0 else "drop_last"


def describe_network(sweep_case: SweepCase) -> dict[str, Any]:
    """Return the JSON description of a sweep case's network, data and schedule."""
    case, network = sweep_case.case, sweep_case.case.network
    return {
        "id": sweep_case.identifier,
        "source": sweep_case.source,
        "description": network.describe(),
        "sizes": list(network.sizes),
        "activations": list(network.activations),
        "loss": network.loss,
        "reduction": network.reduction,
        "bias": network.bias,
        "depth": network.depth,
        "width": max(network.sizes),
        "samples": int(case.x.shape[0]),
        "learning_rate": float(case.learning_rate),
        "iterations": len(case.batches),
        "batch_size": max(len(batch) for batch in case.batches),
        "schedule": _schedule_kind(case.x.shape[0], case.batches),
    }
