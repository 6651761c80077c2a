"""The ``backprop`` command (also ``python -m conformance``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from conformance import check, report
from reference import loss_and_gradients, train
from reference.conventions import parameter_name
from reference.seeds import EXAMPLES, example, explain


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


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="backprop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    seeds = commands.add_parser("seeds", help="the documents' examples through the reference")
    seeds.set_defaults(run=_print_seeds)
    check.add_parser(commands)
    report.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    arguments = build_parser().parse_args(argv)
    return arguments.run(arguments)


if __name__ == "__main__":
    sys.exit(main())
