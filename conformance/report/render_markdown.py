"""A renderer: the report's blocks (``report.content``) as Markdown."""

from __future__ import annotations

import html
from collections.abc import Sequence

from backprop_conformance.report.content import GENERATED_COMMENT, Block


def _markdown_cell(text: str) -> str:
    return str(text).replace("\n", " ").replace("|", "\\|")


def render_markdown(blocks: Sequence[Block]) -> str:
    """Return the blocks as Markdown, after a comment saying the file is generated."""
    lines = [GENERATED_COMMENT, ""]
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            lines += [f"{'#' * block[1]} {block[2]}", ""]
        elif kind == "paragraph":
            lines += [block[1], ""]
        elif kind == "list":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "table":
            lines.append("| " + " | ".join(_markdown_cell(h) for h in block[1]) + " |")
            lines.append("|" + "---|" * len(block[1]))
            lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in block[2]] + [""]
        elif kind == "details":
            lines += [f"<details><summary>{html.escape(block[1])}</summary>", "", "```python", block[2], "```", "",
                      "</details>", ""]
        elif kind == "figure":
            lines += [f"![{block[2]}]({block[1]})", "", f"*{block[2]}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
