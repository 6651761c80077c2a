"""The report's last stage, files: run the pipeline and publish the report into its directory.

cases -> records -> document -> renderers (blocks, Markdown, HTML, figures)
-> files. ``generate`` is the whole pipeline; the files are written with
``common.files.write_atomically``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backprop_conformance.adapters.protocol import DTYPES
from backprop_conformance.common.files import write_atomically
from backprop_conformance.report.cases import DEFAULT_EXAMPLES, document_cases, sampled_cases
from backprop_conformance.report.content import report_blocks
from backprop_conformance.report.document import HTML_FILE, JSON_FILE, MARKDOWN_FILE, build_document
from backprop_conformance.report.figures import draw_figures
from backprop_conformance.report.records import (
    DEFAULT_ADAPTER_SPECS,
    expand_specs,
    load_adapters,
    sweep,
    training_curves,
)
from backprop_conformance.report.render_html import render_html
from backprop_conformance.report.render_markdown import render_markdown


def generate(
    out_dir: str | os.PathLike[str],
    adapters: Sequence[str] = DEFAULT_ADAPTER_SPECS,
    dtypes: Sequence[str] = DTYPES,
    seed: int = 0,
    examples: int = DEFAULT_EXAMPLES,
    progress: str | None = None,
) -> dict[str, Any]:
    """Return the agreement.json document, after writing the whole report into ``out_dir`` atomically.

    ``adapters`` are specs (``torch`` and ``jax`` expand to one built-in
    adapter per dtype of ``dtypes``); ``examples`` sampled networks join the
    documents' three. Raises AdapterError for a spec that names no adapter;
    an adapter that cannot run here is listed as unavailable.
    """
    started = time.perf_counter()
    loaded = load_adapters(expand_specs(adapters, dtypes))
    cases = document_cases() + sampled_cases(seed, examples)
    records = sweep(cases, loaded, progress)
    settings = {"adapters": list(adapters), "dtypes": list(dtypes), "seed": seed, "examples": examples}
    document = build_document(loaded, cases, records, settings, training_curves(loaded))
    images = draw_figures(document)
    blocks = report_blocks(document, {c.identifier: c for c in cases})
    document["duration_seconds"] = round(time.perf_counter() - started, 3)
    files = {name: data for name, data in images.items()}
    files[MARKDOWN_FILE] = render_markdown(blocks).encode("utf-8")
    files[HTML_FILE] = render_html(blocks, images).encode("utf-8")
    files[JSON_FILE] = (json.dumps(document, indent=2, allow_nan=False) + "\n").encode("utf-8")
    write_atomically(Path(out_dir), files, last=JSON_FILE)
    return document
