"""``backprop report``: the agreement report, a seeded sweep of every adapter against the reference.

The sweep is the three documents' networks plus ``--examples`` networks
drawn from ``numpy.random.default_rng(seed)`` (``report.cases``), stratified
over depth, width, activation, loss, reduction, bias and batch schedule.
Every network goes through every adapter x dtype and every quantity of
``suite.comparisons`` (``report.records``); a case outside the tolerance
model is recorded as ``outside model`` with the reason, an exception as
``error``.

Outputs in ``--out`` (default ``reports/``): ``agreement.json`` (its schema:
``conformance/report/schema.json``), ``agreement.md``, ``agreement.html``
(self-contained) and three PNG figures, published as one switch
(``common.publish``): a reader sees the previous report or the new one,
whole, on any file system, and two runs into one directory take turns.
``--out`` is checked before the sweep starts.

Exit status (``EXIT_STATUS``): 0 no comparison fails or errors (outside
model is not a failure); 1 one does (the report is written either way); 2
bad arguments, an adapter that cannot be loaded, or an ``--out`` that cannot
take the report; 3 no adapter can run here (nothing is written); 130
interrupted (the previous report is kept, and what was measured goes to
``agreement.interrupted.json`` in ``--out``).
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from backprop_conformance.adapters.loading import BUILTIN_ADAPTERS, ENTRY_POINT_GROUP
from backprop_conformance.adapters.protocol import DTYPES, AdapterError
from backprop_conformance.common.arguments import non_negative_int, seconds
from backprop_conformance.report.cases import DEFAULT_EXAMPLES
from backprop_conformance.report.document import FIGURE_FILES, MARKDOWN_FILE
from backprop_conformance.report.records import DEFAULT_ADAPTER_SPECS, FRAMEWORKS, VERDICTS

DEFAULT_OUT = "reports"

def _dtypes(text: str) -> list[str]:
    """Return the comma-separated dtypes of ``--dtypes``, validated, duplicates dropped."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in DTYPES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give a comma-separated list of {', '.join(DTYPES)}")
    return list(dict.fromkeys(names))


def _adapter_spec(text: str) -> str:
    """Return ``text`` if it can name an adapter: torch, jax, a built-in, module:attribute or an entry point."""
    module, _, attribute = text.partition(":")
    if text in FRAMEWORKS or text in BUILTIN_ADAPTERS or (module and attribute):
        return text
    named = sorted(e.name for e in entry_points(group=ENTRY_POINT_GROUP))
    if text in named:
        return text
    known = ", ".join(dict.fromkeys([*FRAMEWORKS, *BUILTIN_ADAPTERS, *named]))
    raise argparse.ArgumentTypeError(f"{text!r} is neither package.module:attribute nor one of {known}")


EXIT_STATUS = {
    0: "no comparison fails or errors",
    1: "a comparison fails or errors (the report is written)",
    2: "bad arguments, an adapter that cannot be loaded, or an --out that cannot take the report",
    3: "no adapter can run here: nothing is written, the previous report is kept",
    130: "interrupted: the previous report is kept, what was measured is in agreement.interrupted.json",
}


def _fail(message: str, status: int) -> int:
    print(f"backprop report: {message}", file=sys.stderr)
    return status


def run(arguments: argparse.Namespace) -> int:
    """Generate the report for parsed ``arguments``; return the exit status (``EXIT_STATUS``)."""
    from backprop_conformance.adapters.boundary import DEFAULT_TIMEOUT
    from backprop_conformance.common.files import OutputError
    from backprop_conformance.report.publish import INTERRUPTED_FILE, NothingToReport, generate
    from backprop_conformance.report.records import SweepInterrupted

    specs = arguments.adapter or list(DEFAULT_ADAPTER_SPECS)
    if os.getcwd() not in sys.path:  # a module:attribute spec may name a module of the current directory
        sys.path.insert(0, os.getcwd())
    timeout = DEFAULT_TIMEOUT if arguments.timeout is None else (arguments.timeout or None)  # 0: no limit
    try:
        document = generate(arguments.out, specs, arguments.dtypes, arguments.seed, arguments.examples,
                            progress="bar" if sys.stderr.isatty() else "lines", timeout=timeout)
    except AdapterError as error:
        return _fail(str(error), 2)
    except OutputError as error:
        return _fail(str(error), 2)
    except NothingToReport as error:
        return _fail(f"{error}; the previous report is kept", 3)
    except SweepInterrupted as error:
        return _fail(f"{error}; the previous report is kept, what was measured is in "
                     f"{Path(arguments.out) / INTERRUPTED_FILE}", 130)
    for entry in document["environment"]["adapters"]:
        if entry["status"] != "available":
            print(f"skipped {entry['spec']}: {entry['reason']}")
    totals = {verdict: sum(s["counts"][verdict] for s in document["summary"]) for verdict in VERDICTS}
    print(f"wrote {Path(arguments.out) / MARKDOWN_FILE} (and .json, .html, {len(FIGURE_FILES)} figures): "
          + ", ".join(f"{count} {verdict}" for verdict, count in totals.items()))
    return 1 if totals["fail"] or totals["error"] else 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to ``commands`` (argparse subparsers) and return its parser."""
    parser = commands.add_parser(
        "report",
        help="write the agreement report (JSON, Markdown, HTML, figures)",
        description="Run the documents' networks and a seeded, stratified sample of networks through every "
        "adapter x dtype and write agreement.json, agreement.md, agreement.html and figures to --out.",
        epilog="exit status:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_STATUS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output directory (default {DEFAULT_OUT}/)")
    parser.add_argument(
        "--adapter", action="append", type=_adapter_spec, metavar="SPEC",
        help="adapter to report on, repeatable: torch or jax (one per --dtypes entry), a built-in name such as "
        "torch-float32 or reference, package.module:attribute, or an entry point (default: torch and jax)",
    )
    parser.add_argument("--dtypes", type=_dtypes, default=list(DTYPES), metavar="LIST",
                        help="comma-separated dtypes for torch and jax (default float32,float64)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampled networks (default 0)")
    parser.add_argument("--examples", type=non_negative_int, default=DEFAULT_EXAMPLES, metavar="N",
                        help=f"number of sampled networks besides the documents' 3 (default {DEFAULT_EXAMPLES})")
    parser.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                        help="seconds each adapter call may take before it is recorded as an error "
                        "(default 60; 0: no limit)")
    parser.set_defaults(run=run, report_parser=parser)
    return parser
