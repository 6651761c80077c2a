"""A renderer: the report's blocks (``report.content``) as one self-contained HTML page."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence

from backprop_conformance.report.content import GENERATED_COMMENT, Block, Code, Literal, strip_controls


def _escaped(text: str) -> str:
    return html.escape(strip_controls(text))


def _inline(text: object) -> str:
    """Return a block's text as HTML: this project's own `code` spans as <code>, outside text escaped."""
    if isinstance(text, Literal):
        return _escaped(text)
    if isinstance(text, Code):
        return f"<code>{_escaped(text)}</code>"
    if isinstance(text, tuple):
        return "".join(_inline(segment) for segment in text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(text)))


HTML_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
code, pre { font-family: ui-monospace, monospace; font-size: 0.85rem; }
pre { background: #f7f7f7; padding: 0.75rem; overflow-x: auto; }
figure { margin: 1rem 0; } img { max-width: 100%; }
figcaption { font-style: italic; color: #555; }
"""


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_escaped(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_escaped(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_block(block: Block, images: dict[str, bytes]) -> str:
    """Return one block as HTML; figures become base64 data URIs from ``images``."""
    kind = block[0]
    if kind == "heading":
        return f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>"
    if kind == "paragraph":
        return f"<p>{_inline(block[1])}</p>"
    if kind == "list":
        return "<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in block[1]) + "</ul>"
    if kind == "table":
        return _html_table(block[1], block[2])
    if kind == "details":
        summary, code = _escaped(block[1]), _escaped(block[2])
        return f"<details><summary>{summary}</summary><pre><code>{code}</code></pre></details>"
    data = base64.b64encode(images[block[1]]).decode("ascii")
    caption = _escaped(block[2])
    image = f'<img src="data:image/png;base64,{data}" alt="{caption}">'
    return f"<figure>{image}<figcaption>{caption}</figcaption></figure>"


def render_html(blocks: Sequence[Block], images: dict[str, bytes]) -> str:
    """Return the blocks as one self-contained HTML page (inline CSS, figures as data URIs)."""
    body = "\n".join(_html_block(block, images) for block in blocks)
    return (
        f"<!DOCTYPE html>\n{GENERATED_COMMENT}\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>Agreement report</title>\n<style>{HTML_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
