"""A renderer: the report's blocks (``report.content``) as Markdown.

Literal text is escaped so that nothing in it is markup: every character
that could open inline markup (emphasis, links, code, HTML, entities) gets
a backslash, as does a line-start marker (heading, list, quote, fence);
code gets a backtick fence longer than any run of backticks inside it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from backprop_conformance.report.content import GENERATED_COMMENT, Block, Code, Literal, strip_controls

#: ASCII punctuation that can start inline markup anywhere in a line (CommonMark lets any be escaped).
_INLINE = re.compile(r"([\\`*_\[\]<>!&|~$])")
#: What starts a block when it opens a line: a heading, a list item, a quote, a fence, a table row.
_LINE_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")


def _one_line(text: str) -> str:
    return " ".join(strip_controls(text).splitlines())


def literal(text: str, line_start: bool = True) -> str:
    """Return ``text`` escaped so that Markdown shows it as it is, on one line.

    ``line_start``: also escape what would open a block at the start of a
    line (not needed inside a table cell).
    """
    escaped = _INLINE.sub(r"\\\1", _one_line(text))
    return _LINE_START.sub(lambda match: f"{match[1]}\\{match[2]}", escaped) if line_start else escaped


def code_span(text: str) -> str:
    """Return ``text`` as an inline code span whose fence no run of backticks inside can close."""
    content = _one_line(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", content)), default=0) + 1)
    padding = " " if content.startswith("`") or content.endswith("`") else ""
    return f"{fence}{padding}{content}{padding}{fence}"


def _text(text: object) -> str:
    """Return a block's text: this project's own string as it is, segments with theirs escaped."""
    if isinstance(text, Literal):
        return literal(text)
    if isinstance(text, Code):
        return code_span(text)
    if isinstance(text, tuple):
        return "".join(_text(segment) for segment in text)
    return str(text)


def _code_block(code: str, language: str = "python") -> list[str]:
    content = strip_controls(code)
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", content)), default=0) + 1)
    return [f"{fence}{language}", content, fence]


def render_markdown(blocks: Sequence[Block]) -> str:
    """Return the blocks as Markdown, after a comment saying the file is generated."""
    lines = [GENERATED_COMMENT, ""]
    for block in blocks:
        kind = block[0]
        if kind == "heading":
            lines += [f"{'#' * block[1]} {_text(block[2])}", ""]
        elif kind == "paragraph":
            lines += [_text(block[1]), ""]
        elif kind == "list":
            lines += [f"- {_text(item)}" for item in block[1]] + [""]
        elif kind == "table":
            lines.append("| " + " | ".join(literal(h, line_start=False) for h in block[1]) + " |")
            lines.append("|" + "---|" * len(block[1]))
            lines += ["| " + " | ".join(literal(c, line_start=False) for c in row) + " |" for row in block[2]] + [""]
        elif kind == "details":
            summary = html.escape(_one_line(block[1]))
            lines += [f"<details><summary>{summary}</summary>", "", *_code_block(block[2]), "", "</details>", ""]
        elif kind == "figure":
            lines += [f"![{literal(block[2])}]({block[1]})", "", f"*{literal(block[2])}*", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
