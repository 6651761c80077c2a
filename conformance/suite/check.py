"""``backprop check SPEC``: run the suite against one or more adapters and summarise.

Exit status (``EXIT_STATUS``): 0 every adapter conforms; 1 one does not;
2 usage or load error (a module that cannot be imported, a missing
attribute, no ``name``, a bad ``dtype``, a missing dependency); 3 nothing
was checked (every test skipped, e.g. the framework is not installed);
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from backprop_conformance.common.files import write_file_atomically

EXIT_STATUS = {
    0: "every adapter conforms",
    1: "an adapter does not conform",
    2: "usage or load error: bad arguments, an adapter that cannot be loaded, a missing dependency",
    3: "nothing was checked: every test was skipped (e.g. the framework is not installed)",
    130: "interrupted",
}
PROFILE_NAMES = ("dev", "ci", "thorough")


def _print(text: str = "") -> None:
    print(text, flush=True)


def print_summary(rows: list[tuple], explanations: list[str] = ()) -> None:
    """Print the summary table (rich when available), then why cases were not applicable or known divergences."""
    headers = ("adapter", "quantity", "verdict", "tests", "worst |diff|/allowed", "not applicable", "known divergences")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print("  ".join(headers))
        for row in rows:
            _print("  ".join(map(str, row)))
        for line in explanations:
            _print(f"  {line}")
        return
    table = Table(title="backprop conformance")
    for header in headers:
        table.add_column(header)
    for spec, quantity, verdict, tests, worst, not_applicable, known in rows:
        style = {"FAIL": "bold red", "pass": "green"}.get(verdict, "yellow")
        table.add_row(spec, quantity, f"[{style}]{verdict}[/]", str(tests), worst, str(not_applicable), str(known))
    console = Console(width=None if sys.stdout.isatty() else 200)  # a log: as wide as the table needs
    console.print(table)
    for line in explanations:
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def print_causes(causes: list) -> None:
    """Print each distinct failure once: its message, the tests that showed it, the smallest repro."""
    if not causes:
        return
    _print(f"\n{len(causes)} distinct failure(s):")
    for number, cause in enumerate(causes, start=1):
        failure = cause.failure
        _print(f"\n[{number}] {failure['message'].split(chr(10) + 'repro:')[0]}")
        _print(f"    seen in {len(cause.tests)} test(s): {', '.join(cause.tests)}")
        if failure.get("repro"):
            _print("    repro (the case as the adapter got it):")
            _print("\n".join("      " + line for line in failure["repro"].splitlines()))


def _preload(specs: list[str]) -> str | None:
    """Load every adapter once; return the first load error (exit 2), or None if each loads or is unavailable."""
    from backprop_conformance.adapters.protocol import AdapterError
    from backprop_conformance.suite import session

    for spec in specs:
        loaded = session.adapter_for(spec)
        if isinstance(loaded, AdapterError):
            return str(loaded)
    return None


def pytest_options(arguments: argparse.Namespace) -> list[str]:
    """Return the pytest command line ``run`` uses: the suite, quiet, and the user's pass-through last."""
    options = ["--pyargs", "backprop_conformance", "-p", "no:cacheprovider", "-q", "--tb=no", "-rN",
               "--assert=plain", "--conformance-profile", arguments.profile]
    if arguments.max_examples:
        options += ["--conformance-max-examples", str(arguments.max_examples)]
    if arguments.no_shrink:
        options.append("--conformance-no-shrink")
    if arguments.timeout is not None:
        options += ["--conformance-timeout", str(arguments.timeout)]
    if arguments.exitfirst:
        options.append("-x")
    if arguments.k:
        options += ["-k", arguments.k]
    if arguments.junitxml:
        options += ["--junitxml", str(arguments.junitxml)]
    for spec in arguments.adapter:
        options += ["--adapter", spec]
    return options + list(arguments.pytest_args)


def _exit_status(pytest_status: int, rows: list) -> int:
    import pytest

    if pytest_status == pytest.ExitCode.INTERRUPTED:
        return 130
    if pytest_status in (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.INTERNAL_ERROR):
        return 2
    if pytest_status == pytest.ExitCode.NO_TESTS_COLLECTED or not rows or all(r[2] == "skipped" for r in rows):
        return 3
    return 0 if pytest_status == pytest.ExitCode.OK else 1


def run(arguments: argparse.Namespace) -> int:
    """Run the suite for ``arguments.adapter``; return the exit status."""
    missing = [name for name in ("pytest", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"backprop check: needs {' and '.join(missing)}: pip install 'backprop-conformance[suite]'",
              file=sys.stderr)
        return 2
    # As ``python -m`` does: a module:attribute spec may name a module of the current directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import pytest

    from backprop_conformance.adapters.loading import COMMAND_PREFIX
    from backprop_conformance.suite import session
    from backprop_conformance.suite.check_summary import SummaryPlugin, json_document

    arguments.adapter = [*arguments.adapter, *(COMMAND_PREFIX + command for command in arguments.commands)]
    if not arguments.adapter:
        print("backprop check: give at least one SPEC or --command CMD", file=sys.stderr)
        return 2
    session.reset()
    problem = _preload(arguments.adapter)
    if problem is not None:
        print(f"backprop check: {problem}", file=sys.stderr)
        return 2
    summary = SummaryPlugin()
    status = pytest.main(pytest_options(arguments), plugins=[summary])
    rows = summary.rows()
    print_summary(rows, summary.explanations())
    print_causes(summary.causes())
    exit_status = _exit_status(status, rows)
    if exit_status == 3 and status == pytest.ExitCode.NO_TESTS_COLLECTED:
        _print("nothing was checked: no test was selected (see -k)")
    elif exit_status == 3:
        _print("nothing was checked: every test was skipped (see the reasons above)")
    if arguments.json:
        settings = {"adapters": arguments.adapter, "profile": arguments.profile,
                    "max_examples": arguments.max_examples, "pytest_args": list(arguments.pytest_args)}
        write_file_atomically(Path(arguments.json), json_document(summary, settings, exit_status))
    return exit_status


def _epilog() -> str:
    codes = "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_STATUS.items())
    return f"exit status:\n{codes}\n\nArguments after -- go to pytest as they are, e.g. -- --tb=short -v."


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``check`` subcommand to ``commands`` and return its parser."""
    from backprop_conformance.common.arguments import positive_int, seconds

    parser = commands.add_parser(
        "check",
        help="run the conformance suite against adapters",
        description="Run the conformance suite against each SPEC (package.module:attribute, found from the "
        "current directory as python -m does; a built-in name such as torch-float32; an entry point; or "
        "command:CMD, a program in any language) and print a summary.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("adapter", nargs="*", metavar="SPEC")
    parser.add_argument("--command", dest="commands", action="append", default=[], metavar="CMD",
                        help="check a program in any language that speaks the JSON-lines protocol on stdin and "
                        "stdout (README: Checking code in any language); the same as SPEC command:CMD")
    parser.add_argument("--profile", default="ci", choices=PROFILE_NAMES,
                        help="the suite's Hypothesis profile: dev (40 examples), ci (60, derandomized; the "
                        "default) or thorough (1000)")
    parser.add_argument("--max-examples", type=positive_int, default=None, metavar="N",
                        help="Hypothesis examples per test instead of the profile's (fewer for a library that "
                        "compiles on every call)")
    parser.add_argument("-k", default=None, help="only tests matching this pytest -k expression")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    parser.add_argument("--no-shrink", action="store_true",
                        help="report the first failing example as drawn, without shrinking it")
    parser.add_argument("--timeout", type=seconds, default=None, metavar="SECONDS",
                        help="seconds each adapter call may take before it fails, naming the adapter and the method "
                        "(default 60; 0: no limit)")
    parser.add_argument("--junitxml", type=Path, default=None, metavar="PATH", help="also write a JUnit XML report")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write one JSON record per test and quantity: adapter, verdict, worst ratio, "
                        "the shrunk case")
    # backprop_conformance.cli hands over what follows "--" as pytest_args.
    parser.set_defaults(run=run, pytest_args=[])
    return parser
