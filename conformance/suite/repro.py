"""Runnable repro snippets: the case as the adapter got it, and the call to repeat, in plain Python.

Floats are written with ``repr``, which round-trips exactly; a document's
case is rebuilt from ``reference.seeds`` rather than written out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CALL_ARGUMENTS = {
    "forward": "network, params, x",
    "loss_and_gradients": "network, params, x, y",
    "sgd_step": "network, params, x, y, learning_rate",
    "train": "network, params, x, y, batches, learning_rate",
}


def _array_literal(array: np.ndarray | None) -> str:
    if array is None:
        return "None"
    dtype = "" if array.dtype.kind == "f" else f", dtype=np.{array.dtype}"
    return f"np.array({array.tolist()!r}{dtype})"


def _case_lines(case: Any, call: str) -> list[str]:
    """Return the lines that define network, params, x, y (and batches, learning_rate) for ``call``."""
    if getattr(case, "source", None):
        lines = [
            "from backprop_conformance.reference.seeds import example",
            f"document = example({case.source!r})",
            "network, params, x, y = document.network, document.params, document.x, document.y",
            "batches, learning_rate = document.batches, document.learning_rate",
        ]
        return lines
    params = ",\n    ".join(f"({_array_literal(w)}, {_array_literal(b)})" for w, b in case.params)
    lines = [
        "import numpy as np",
        "from backprop_conformance.reference import Network",
        f"network = {case.network!r}",
        f"params = [\n    {params},\n]",
        f"x = {_array_literal(case.x)}",
        f"y = {_array_literal(case.y)}",
    ]
    if call == "train":
        lines.append(f"batches = [{', '.join(_array_literal(b) for b in case.batches)}]")
    if call in ("sgd_step", "train"):
        lines.append(f"learning_rate = {case.learning_rate!r}")
    return lines


def repro_snippet(case: Any, adapter_spec: str, call: str) -> str:
    """Return a runnable Python snippet that rebuilds ``case`` and repeats ``call``.

    ``call`` is one of ``forward``, ``loss_and_gradients``, ``sgd_step``, ``train``.
    """
    arguments = CALL_ARGUMENTS[call]
    definitions = _case_lines(case, call)
    numpy = [line for line in definitions if line == "import numpy as np"]
    lines = [
        *numpy,
        "from backprop_conformance import reference",
        "from backprop_conformance.adapters import load_adapter",
        *[line for line in definitions if line not in numpy],
        f"adapter = load_adapter({adapter_spec!r})",
        f"print(adapter.{call}({arguments}))",
        f"print(reference.{call}({arguments}))",
    ]
    return "\n".join(lines)
