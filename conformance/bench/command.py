"""The ``backprop bench`` command: run the measurements, render performance.md, write both files.

Measuring is ``bench.measure`` (in workers, ``bench.worker``) and
``bench.suite_speed``; judging the targets ``bench.targets``; rendering
``bench.render``. This module runs them in order and writes the two files
atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from backprop_conformance.bench.matmuls import step_matmuls
from backprop_conformance.bench.measure import environment, time_size
from backprop_conformance.bench.peaks import blas_pinned, machine_peaks, merge_peaks
from backprop_conformance.bench.plan import (
    DEFAULT_OUT,
    DEFAULT_REPEATS,
    DEFAULT_SUITE_EXAMPLES,
    IMPLEMENTATIONS,
    JSON_FILE,
    LEARNING_RATE,
    MARKDOWN_FILE,
    PEAK_MATMUL_SIZE,
    PEAK_REPEATS,
    QUICK_PEAK_MATMUL_SIZE,
    QUICK_REPEATS,
    QUICK_SAMPLE_SECONDS,
    QUICK_SETTLE_SECONDS,
    QUICK_SIZES,
    QUICK_SUITE_EXAMPLES,
    QUICK_WARM_SECONDS,
    SAMPLE_SECONDS,
    SETTLE_SECONDS,
    SIZES,
    WARM_SECONDS,
    framework_available,
)
from backprop_conformance.bench.render import render_markdown
from backprop_conformance.bench.suite_speed import suite_throughput
from backprop_conformance.bench.targets import targets
from backprop_conformance.common.arguments import positive_int
from backprop_conformance.common.files import OutputError, check_output_directory
from backprop_conformance.common.publish import publish


def command_line(arguments: argparse.Namespace) -> str:
    """Return the command that regenerates this report."""
    words = ["backprop", "bench"]
    if arguments.out != DEFAULT_OUT:
        words += ["--out", arguments.out]
    if arguments.repeats is not None:
        words += ["--repeats", str(arguments.repeats)]
    if arguments.quick:
        words.append("--quick")
    if arguments.suite:
        words.append("--suite")
    if arguments.suite and arguments.suite_examples is not None:
        words += ["--suite-examples", str(arguments.suite_examples)]
    return " ".join(words)


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(arguments: argparse.Namespace) -> int:
    """Time every implementation on every size, optionally the suite, and write the report."""
    try:
        check_output_directory(Path(arguments.out))  # before minutes of timing, not after
    except OutputError as error:
        print(f"backprop bench: {error}", file=sys.stderr)
        return 2
    quick = arguments.quick
    repeats = arguments.repeats or (QUICK_REPEATS if quick else DEFAULT_REPEATS)
    sample_seconds = QUICK_SAMPLE_SECONDS if quick else SAMPLE_SECONDS
    settle_seconds = QUICK_SETTLE_SECONDS if quick else SETTLE_SECONDS
    warm_seconds = QUICK_WARM_SECONDS if quick else WARM_SECONDS
    sizes = [size for size in SIZES if not quick or size.name in QUICK_SIZES]
    implementations, unavailable = [], {}
    for implementation in IMPLEMENTATIONS:
        reason = framework_available(implementation.family)
        if quick and implementation.one_core:
            continue  # the one-thread context is not part of a smoke run
        if implementation.own_kernels and not blas_pinned():
            continue  # OpenBLAS chooses its own kernels in every worker already
        if reason is None:
            implementations.append(implementation)
        else:
            unavailable[implementation.name] = reason
    load_before = _load_average()
    peak_size = QUICK_PEAK_MATMUL_SIZE if quick else PEAK_MATMUL_SIZE
    _log(f"bench: matmul peak ({peak_size}x{peak_size})")
    peak_before = machine_peaks(peak_size, PEAK_REPEATS, with_torch=not quick)
    timed = []
    for size in sizes:
        _log(f"bench: {size.name}, {len(implementations)} implementations x {repeats} rounds")
        timed.append(time_size(size, implementations, repeats, sample_seconds, settle_seconds, warm_seconds))
    _log("bench: the steps' matmuls alone")
    large = [size for size in sizes if size.kind == "large"] or sizes  # a --quick run: its one small size
    matmuls = step_matmuls(large, repeats, sample_seconds, settle_seconds, warm_seconds)
    peak = merge_peaks(peak_before, machine_peaks(peak_size, PEAK_REPEATS, with_torch=not quick))
    load_after = _load_average()
    suite = None
    if arguments.suite:
        examples = arguments.suite_examples or (QUICK_SUITE_EXAMPLES if quick else DEFAULT_SUITE_EXAMPLES)
        _log(f"bench: suite throughput, {examples} cases")
        suite = suite_throughput(examples)
    document = {
        "command": command_line(arguments),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "repeats": repeats,
        "sample_seconds": sample_seconds,
        "settle_seconds": settle_seconds,
        "warm_seconds": warm_seconds,
        "learning_rate": LEARNING_RATE,
        "environment": environment(timed),
        "unavailable": unavailable,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "matmul_peak": peak,
        "matmuls": matmuls,
        "sizes": timed,
        "suite": suite,
    }
    document["targets"] = targets(document)
    out_dir = Path(arguments.out)
    files = {
        JSON_FILE: (json.dumps(document, indent=2) + "\n").encode("utf-8"),
        MARKDOWN_FILE: render_markdown(document).encode("utf-8"),
    }
    try:
        publish(out_dir, files, kind="performance")
    except OutputError as error:
        print(f"backprop bench: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out_dir / MARKDOWN_FILE} and {out_dir / JSON_FILE}")
    for check in document["targets"]:
        verdict = "met" if check["met"] else "NOT met"
        print(f"  {check['size']}: {check['reference']} / {check['against']} = {check['ratio']:.2f} "
              f"(target {check['target']}): {verdict}")
    if suite is not None:
        print(f"  suite: {suite['first']['cases_per_second']:.0f} cases/s on a first pass over "
              f"{suite['first']['cases']} cases, {suite['repeated']['cases_per_second']:.0f} cases/s repeated")
    return 0


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to ``commands`` (argparse subparsers) and return its parser."""
    parser = commands.add_parser(
        "bench",
        help="time one training step of the reference, torch eager and jax.jit",
        description="Time one training step (forward, loss, backward, update) of the reference, torch eager and "
        "jax.jit at the documents' sizes and two large ones, interleaved; write performance.md and "
        "performance.json to --out.",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output directory (default {DEFAULT_OUT}/)")
    parser.add_argument("--repeats", type=positive_int, default=None, metavar="N",
                        help=f"interleaved rounds per size (default {DEFAULT_REPEATS}, {QUICK_REPEATS} with --quick)")
    parser.add_argument("--suite", action="store_true",
                        help="also measure the conformance suite's throughput (three-way gradient checks)")
    parser.add_argument("--suite-examples", type=positive_int, default=None, metavar="N",
                        help=f"Hypothesis cases for --suite (default {DEFAULT_SUITE_EXAMPLES}, "
                        f"{QUICK_SUITE_EXAMPLES} with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2-3-1 at batch 1 only, default threads only, few rounds, short samples")
    parser.set_defaults(run=run)
    return parser
