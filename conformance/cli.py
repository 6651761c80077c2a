"""The ``backprop`` command (also ``python -m backprop_conformance``).

``check``, ``report``, ``bench``, ``explain``, ``seeds`` and ``vectors``; ``backprop
--version``. Building the parser imports no framework, no Hypothesis and no
matplotlib: each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from backprop_conformance import __version__


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    from backprop_conformance import documents
    from backprop_conformance.bench import command as bench_command
    from backprop_conformance.report import command as report_command
    from backprop_conformance.suite import check
    from backprop_conformance.vectors import command as vectors_command

    parser = argparse.ArgumentParser(
        prog="backprop",
        description="A NumPy backprop oracle for small MLPs, and a suite that checks implementations against it.",
    )
    parser.add_argument("--version", action="version", version=f"backprop-conformance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check.add_parser(commands)
    report_command.add_parser(commands)
    bench_command.add_parser(commands)
    documents.add_parsers(commands)
    vectors_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    For ``check``, what follows ``--`` goes to pytest untouched.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    passed_through: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passed_through = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if passed_through:
        if arguments.command != "check":
            parser.error(f"arguments after -- are for pytest, and only check takes them: {' '.join(passed_through)}")
        arguments.pytest_args = passed_through
    try:
        return arguments.run(arguments)
    except KeyboardInterrupt:
        print(f"backprop {arguments.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
