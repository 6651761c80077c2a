"""Markdown tables and numbers as performance.md writes them (``bench.render``, ``bench.matmuls``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def format_ms(seconds: float) -> str:
    milliseconds = seconds * 1e3
    return f"{milliseconds:.3g}" if milliseconds < 100 else f"{milliseconds:.0f}"


def format_bytes(count: int | None) -> str:
    if count is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} B"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def per_implementation_table(document: dict, names: Sequence[str], cell: Callable[[dict, dict], str]) -> list[str]:
    """Return a table of ``cell(size, result)``, one row per size, one column per measured implementation."""
    names = [name for name in names if any(name in size["implementations"] for size in document["sizes"])]
    if not names:
        return ["(none measured)"]
    rows = []
    for size in document["sizes"]:
        results = size["implementations"]
        rows.append([size["name"]] + [cell(size, results[name]) if name in results else "-" for name in names])
    return markdown_table(["size", *names], rows)
