"""``backprop seeds`` and ``backprop explain``: the three documents' networks through the reference.

Both trace the document's weight over the whole batch by default, so the
sum of the chain-rule terms ``explain`` prints is the dJ/dW that ``seeds``
prints in its gradient matrix. ``explain --samples N`` uses the first N
samples, and says so. No framework is imported unless ``--frameworks``
asks for it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from backprop_conformance.reference import loss_and_gradients, train
from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.explain import parse_weight
from backprop_conformance.reference.seeds import EXAMPLES, Example, example, explain

#: --frameworks names and the built-in adapters they load (in float64, like the reference).
FRAMEWORK_ADAPTERS = {"torch": "torch-float64", "jax": "jax-float64"}


def _samples_text(document: Example, samples: int) -> str:
    total = len(document.x)
    return f"all {total} sample(s) of the batch" if samples == total else f"samples 0..{samples - 1} of {total}"


def print_seeds(arguments: argparse.Namespace) -> int:
    """Run the three documents' examples through the reference and print them."""
    np.set_printoptions(precision=6, suppress=False, linewidth=100)
    for key in EXAMPLES:
        document = example(key)
        print(f"== document {key}: {document.title}")
        print(f"   network {document.network.describe()}, {_samples_text(document, len(document.x))}")
        value, grads = loss_and_gradients(document.network, document.params, document.x, document.y)
        print(f"   J = {value:.12g}")
        for layer, (d_weight, d_bias) in enumerate(grads, start=1):
            matrix = np.array2string(d_weight, prefix="      ")
            print(f"   dJ/d{parameter_name(layer, 'W')} = {matrix}".replace("\n", "\n   "))
            if d_bias is not None:
                print(f"   dJ/d{parameter_name(layer, 'b')} = {d_bias}")
        trajectory = train(document.network, document.params, document.x, document.y, document.batches,
                           document.learning_rate)
        print(
            f"   {len(document.batches)} iterations at learning rate {document.learning_rate}: "
            f"J {trajectory.losses[0]:.6f} -> {trajectory.losses[-1]:.6f}"
        )
        print(explain(document.network, document.params, document.x, document.y, document.weight).render())
        print()
    return 0


def framework_values(
    frameworks: list[str], network: Any, params: Any, x: np.ndarray, y: np.ndarray, weight: str
) -> list[tuple[str, str]]:
    """Return (adapter, value or reason) for each framework's autograd of one parameter."""
    from backprop_conformance.adapters.loading import available_adapters

    kind, layer, index = parse_weight(network, weight)
    values = []
    specs = tuple(FRAMEWORK_ADAPTERS[name] for name in frameworks)
    for spec, adapter in available_adapters(specs).items():
        if isinstance(adapter, str):
            values.append((spec, f"unavailable: {adapter}"))
            continue
        _, grads = adapter.loss_and_gradients(network, params, x, y)
        values.append((spec, f"{float(grads[layer - 1][0 if kind == 'W' else 1][index]): .15e}"))
    return values


def _frameworks(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FRAMEWORK_ADAPTERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of {', '.join(FRAMEWORK_ADAPTERS)}")
    return list(dict.fromkeys(names))


def run_explain(arguments: argparse.Namespace) -> int:
    """Print one weight's chain rule factor by factor over the batch, and the frameworks' values if asked."""
    document = example(arguments.network)
    weight = arguments.weight or document.weight
    total = len(document.x)
    samples = total if arguments.samples is None else arguments.samples
    if samples > total:
        print(f"backprop explain: --samples {samples}: document {document.key}'s batch has {total} sample(s)",
              file=sys.stderr)
        return 2
    try:
        parse_weight(document.network, weight)
    except ValueError as error:
        print(f"backprop explain: {error}", file=sys.stderr)
        return 2
    x, y = document.x[:samples], document.y[:samples]
    print(f"document {document.key}: {document.title}; {_samples_text(document, samples)}")
    trace = explain(document.network, document.params, x, y, weight)
    print(trace.render(max_terms=arguments.max_terms))
    for spec, value in framework_values(arguments.frameworks or [], document.network, document.params, x, y, weight):
        print(f"  {spec + ' autograd':<24} = {value}")
    return 0


def add_parsers(commands: Any) -> None:
    """Add the ``seeds`` and ``explain`` subcommands to ``commands``."""
    from backprop_conformance.common.arguments import positive_int

    seeds = commands.add_parser("seeds", help="the documents' examples through the reference")
    seeds.set_defaults(run=print_seeds)
    parser = commands.add_parser(
        "explain",
        help="trace one weight's gradient through the chain rule",
        description="Print dJ/d(weight) as products of chain-rule factors with numbers (document 000's "
        "Steps 1-4) over the document's whole batch, their sum and the layer-wise backprop value; with "
        "--frameworks, torch's and JAX's autograd values beside them.",
    )
    parser.add_argument("--network", choices=sorted(EXAMPLES), default="000", help="document (default 000)")
    parser.add_argument("--weight", default=None, help="e.g. 'W1[0,1]' or 'b2[0]' (default: the document's)")
    parser.add_argument("--samples", type=positive_int, default=None, metavar="N",
                        help="use the batch's first N samples (default: all of them)")
    parser.add_argument("--max-terms", type=positive_int, default=8, help="terms shown in full (default 8)")
    parser.add_argument("--frameworks", type=_frameworks, default=None, metavar="LIST",
                        help="also compute the weight's gradient with these, comma-separated: torch,jax "
                        "(imports them; default: none)")
    parser.set_defaults(run=run_explain)
