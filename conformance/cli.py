"""The ``backprop`` command (also ``python -m backprop_conformance``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from backprop_conformance.common.arguments import positive_int
from backprop_conformance.reference import loss_and_gradients, train
from backprop_conformance.reference.conventions import parameter_name
from backprop_conformance.reference.seeds import EXAMPLES, example, explain
from backprop_conformance.report import command as report_command
from backprop_conformance.suite import check


def _print_seeds(arguments: argparse.Namespace) -> int:
    """Run the three documents' examples through the reference and print them."""
    np.set_printoptions(precision=6, suppress=False, linewidth=100)
    for key in EXAMPLES:
        case = example(key)
        print(f"== document {key}: {case.title}")
        print(f"   network {case.network.describe()}")
        value, grads = loss_and_gradients(case.network, case.params, case.x, case.y)
        print(f"   J = {value:.12g}")
        for layer, (d_weight, d_bias) in enumerate(grads, start=1):
            matrix = np.array2string(d_weight, prefix="      ")
            print(f"   dJ/d{parameter_name(layer, 'W')} = {matrix}".replace("\n", "\n   "))
            if d_bias is not None:
                print(f"   dJ/d{parameter_name(layer, 'b')} = {d_bias}")
        trajectory = train(case.network, case.params, case.x, case.y, case.batches, case.learning_rate)
        print(
            f"   {len(case.batches)} iterations at learning rate {case.learning_rate}: "
            f"J {trajectory.losses[0]:.6f} -> {trajectory.losses[-1]:.6f}"
        )
        print(explain(case.network, case.params, case.x[:1], case.y[:1], case.weight).render())
        print()
    return 0


def _framework_values(case: object, kind: str, layer: int, index: tuple[int, ...]) -> list[tuple[str, str]]:
    """Return (adapter, value or reason) for torch's and JAX's autograd of one parameter."""
    from backprop_conformance.adapters.loading import available_adapters

    values = []
    for spec, adapter in available_adapters(("torch-float64", "jax-float64")).items():
        if isinstance(adapter, str):
            values.append((spec, f"unavailable: {adapter}"))
            continue
        _, grads = adapter.loss_and_gradients(case.network, case.params, case.x, case.y)
        values.append((spec, f"{float(grads[layer - 1][0 if kind == 'W' else 1][index]): .15e}"))
    return values


def _explain(arguments: argparse.Namespace) -> int:
    """Print one weight's chain rule factor by factor, and the frameworks' autograd values."""
    from backprop_conformance.reference.explain import parse_weight

    case = example(arguments.network)
    weight = arguments.weight or case.weight
    samples = slice(0, arguments.samples)
    try:
        kind, layer, index = parse_weight(case.network, weight)
    except ValueError as error:
        build_parser().error(str(error))
    x, y = case.x[samples], case.y[samples]
    print(f"document {case.key}: {case.title}")
    trace = explain(case.network, case.params, x, y, weight)
    print(trace.render(max_terms=arguments.max_terms))
    from backprop_conformance.suite.case import Case

    batch = Case(case.network, case.params, x, y)
    for spec, value in _framework_values(batch, kind, layer, index):
        print(f"  {spec + ' autograd':<24} = {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="backprop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    seeds = commands.add_parser("seeds", help="the documents' examples through the reference")
    seeds.set_defaults(run=_print_seeds)
    check.add_parser(commands)
    explain_parser = commands.add_parser(
        "explain",
        help="trace one weight's gradient through the chain rule",
        description="Print dJ/d(weight) as products of chain-rule factors with numbers (document 000's "
        "Steps 1-4), their sum, the layer-wise backprop value, and torch's and JAX's autograd values.",
    )
    explain_parser.add_argument("--network", choices=sorted(EXAMPLES), default="000", help="document (default 000)")
    explain_parser.add_argument("--weight", default=None, help="e.g. 'W1[0,1]' or 'b2[0]' (default: the document's)")
    explain_parser.add_argument(
        "--samples", type=positive_int, default=1, help="samples of the batch to use (default 1)"
    )
    explain_parser.add_argument("--max-terms", type=positive_int, default=8, help="terms shown in full (default 8)")
    explain_parser.set_defaults(run=_explain)
    report_command.add_parser(commands)
    from backprop_conformance.bench import command as bench_command

    bench_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = build_parser().parse_args(argv)
    return arguments.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
