"""The report's last stage, files: run the pipeline and publish the report into its directory.

cases -> records -> document -> renderers (blocks, Markdown, HTML, figures)
-> files. ``generate`` is the whole pipeline; the files are published with
``common.publish.publish``: one switch from the old report to the new.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backprop_conformance.adapters.boundary import DEFAULT_TIMEOUT
from backprop_conformance.adapters.protocol import DTYPES
from backprop_conformance.common.files import check_output_directory, write_file_atomically
from backprop_conformance.common.publish import publish
from backprop_conformance.report.cases import DEFAULT_EXAMPLES, document_cases, sampled_cases
from backprop_conformance.report.content import report_blocks
from backprop_conformance.report.document import HTML_FILE, JSON_FILE, MARKDOWN_FILE, build_document
from backprop_conformance.report.figures import draw_figures
from backprop_conformance.report.optimizers import optimizer_comparison
from backprop_conformance.report.records import (
    DEFAULT_ADAPTER_SPECS,
    SweepInterrupted,
    expand_specs,
    load_adapters,
    sweep,
    training_curves,
)
from backprop_conformance.report.render_html import render_html
from backprop_conformance.report.render_markdown import render_markdown


class NothingToReport(Exception):
    """No adapter could run: the report is refused, and the previous one kept."""


#: Where an interrupted run leaves what it measured, inside the output directory.
INTERRUPTED_FILE = "agreement.interrupted.json"


def _json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")


def generate(
    out_dir: str | os.PathLike[str],
    adapters: Sequence[str] = DEFAULT_ADAPTER_SPECS,
    dtypes: Sequence[str] = DTYPES,
    seed: int = 0,
    examples: int = DEFAULT_EXAMPLES,
    progress: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Return the agreement.json document, after publishing the whole report into ``out_dir`` as one switch.

    ``adapters`` are specs (``torch`` and ``jax`` expand to one built-in
    adapter per dtype of ``dtypes``); ``examples`` sampled networks join the
    documents' three; each adapter call may take ``timeout`` seconds.
    Before the sweep: raises OutputError if ``out_dir`` cannot take a
    report, AdapterError for a spec that names no adapter, and
    NothingToReport if no adapter can run here. On Ctrl-C the records
    measured so far go to ``out_dir/agreement.interrupted.json``, the
    previous report stays, and SweepInterrupted is raised.
    """
    started = time.perf_counter()
    check_output_directory(Path(out_dir))
    loaded = load_adapters(expand_specs(adapters, dtypes), timeout)
    if not any(entry.adapter is not None for entry in loaded):
        reasons = "; ".join(f"{entry.spec}: {entry.reason}" for entry in loaded)
        raise NothingToReport(f"no adapter can run here, so there is nothing to report ({reasons})")
    cases = document_cases() + sampled_cases(seed, examples)
    settings = {"adapters": list(adapters), "dtypes": list(dtypes), "seed": seed, "examples": examples}
    try:
        records = sweep(cases, loaded, progress)
    except SweepInterrupted as interrupted:
        partial = build_document(loaded, cases, interrupted.records, settings, {"reference": []})
        partial |= {"interrupted": str(interrupted), "runs": interrupted.runs, "planned_runs": interrupted.planned}
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        write_file_atomically(Path(out_dir) / INTERRUPTED_FILE, _json(partial))
        raise
    document = build_document(loaded, cases, records, settings, training_curves(loaded), optimizer_comparison(loaded))
    images = draw_figures(document)
    blocks = report_blocks(document, {c.identifier: c for c in cases})
    document["duration_seconds"] = round(time.perf_counter() - started, 3)
    files = {name: data for name, data in images.items()}
    files[MARKDOWN_FILE] = render_markdown(blocks).encode("utf-8")
    files[HTML_FILE] = render_html(blocks, images).encode("utf-8")
    files[JSON_FILE] = _json(document)
    publish(Path(out_dir), files, kind="agreement", owned={INTERRUPTED_FILE})
    return document
