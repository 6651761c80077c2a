"""The agreement report's figures, drawn with matplotlib's Agg backend and returned as PNG bytes.

Each figure is a ``matplotlib.figure.Figure`` on its own ``FigureCanvasAgg``
(never pyplot: no global backend, no global state), at a fixed size and dpi,
saved without the "Software" metadata, so the same data gives the same bytes.
Points that must be spread out are dodged by fixed offsets, never jittered at
random.

Ratios are ``|diff| / allowed`` (``suite.tolerances``): 1 is the
tolerance, and a ratio of exactly 0 (bit-identical to the reference) is drawn
at ``RATIO_FLOOR`` so that it fits on a log axis.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backprop_conformance.report.content import strip_controls
from backprop_conformance.report.document import FIGURE_FILES
from backprop_conformance.report.records import TRAINING_FIGURE_EXAMPLE

FIGURE_SIZE = (9.0, 4.8)
#: The optimizer figure: a 3 x 3 grid of panels, one per configuration of ``report.optimizers``.
OPTIMIZER_FIGURE_SIZE = (12.6, 11.0)  # four rows of three panels
DPI = 100
#: Where an exact match (ratio 0) is drawn on the log axes.
RATIO_FLOOR = 1e-8
QUANTITY_COLOURS = {
    "output": "tab:gray",
    "loss": "tab:blue",
    "gradient": "tab:orange",
    "update": "tab:green",
    "trajectory": "tab:purple",
}
ADAPTER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink")

Record = Mapping[str, Any]


def shown(label: str) -> str:
    """Return an adapter's label as matplotlib should show it: literally.

    A ``$`` would start mathtext (and ``$\\frac{x}$`` would crash the
    drawing), so each one is escaped; control characters are dropped.
    """
    return strip_controls(label).replace("$", r"\$")


def _png(figure: Figure) -> bytes:
    """Return the figure as PNG bytes, without metadata that could vary between runs."""
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _measured(records: Sequence[Record]) -> list[Record]:
    """Return the records that carry a finite ratio (passed or failed, not skipped)."""
    return [r for r in records if r["verdict"] in ("pass", "fail") and r["worst_ratio"] is not None]


def _floored(ratio: float) -> float:
    return max(float(ratio), RATIO_FLOOR)


def _no_data(axes: Any, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def error_distribution(records: Sequence[Record], labels: Sequence[str]) -> bytes:
    """Return a PNG: every record's worst |diff|/allowed on a log axis, one row per adapter x dtype."""
    figure = Figure(figsize=FIGURE_SIZE)
    axes = figure.add_subplot()
    measured = _measured(records)
    if not measured or not labels:
        _no_data(axes, "no measurements")
        return _png(figure)
    quantities = list(QUANTITY_COLOURS)
    for row, label in enumerate(labels):
        for slot, quantity in enumerate(quantities):
            ratios = [_floored(r["worst_ratio"]) for r in measured if r["label"] == label and r["quantity"] == quantity]
            offset = (slot - (len(quantities) - 1) / 2) * 0.13
            axes.scatter(
                ratios, np.full(len(ratios), row + offset), s=14, alpha=0.7,
                color=QUANTITY_COLOURS[quantity], label=quantity if row == 0 else None,
            )
    axes.axvline(1.0, color="black", linestyle="--", linewidth=1, label="tolerance (ratio 1)")
    axes.set_xscale("log")
    axes.set_yticks(range(len(labels)), [shown(label) for label in labels])
    axes.invert_yaxis()
    axes.set_xlabel(f"worst |diff| / allowed per network (exact matches at {RATIO_FLOOR:g})")
    axes.set_title("Distance to the tolerance, per adapter x dtype and quantity")
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
    figure.tight_layout()
    return _png(figure)


def _worst_per_network(records: Sequence[Record], label: str) -> dict[str, float]:
    """Return each network's worst ratio over all quantities, for one adapter label."""
    worst: dict[str, float] = {}
    for record in _measured(records):
        if record["label"] == label:
            worst[record["network"]] = max(worst.get(record["network"], 0.0), float(record["worst_ratio"]))
    return worst


def error_by_size(records: Sequence[Record], networks: Mapping[str, Mapping[str, Any]], labels: Sequence[str]) -> bytes:
    """Return a PNG: each network's worst |diff|/allowed against its depth (left) and widest layer (right)."""
    figure = Figure(figsize=FIGURE_SIZE)
    depth_axes, width_axes = figure.subplots(1, 2, sharey=True)
    if not _measured(records) or not labels:
        _no_data(depth_axes, "no measurements")
        _no_data(width_axes, "no measurements")
        return _png(figure)
    for slot, label in enumerate(labels):
        worst = _worst_per_network(records, label)
        ids = sorted(worst)
        offset = (slot - (len(labels) - 1) / 2) * 0.12
        colour = ADAPTER_COLOURS[slot % len(ADAPTER_COLOURS)]
        ratios = [_floored(worst[i]) for i in ids]
        for axes, key in ((depth_axes, "depth"), (width_axes, "width")):
            positions = [networks[i][key] + offset * (1 if key == "depth" else 2) for i in ids]
            axes.scatter(positions, ratios, s=16, alpha=0.75, color=colour, label=shown(label))
    for axes, text in ((depth_axes, "depth (layers with weights)"), (width_axes, "widest layer")):
        axes.axhline(1.0, color="black", linestyle="--", linewidth=1)
        axes.set_yscale("log")
        axes.set_xlabel(text)
    depth_axes.set_ylabel("worst |diff| / allowed over quantities")
    depth_axes.legend(fontsize="small", loc="lower left")
    figure.suptitle("Distance to the tolerance against network size")
    figure.tight_layout()
    return _png(figure)


def training_curves(curves: Mapping[str, Sequence[float]], title: str) -> bytes:
    """Return a PNG: each implementation's training loss per iteration (left) and its |diff| to the reference (right).

    ``curves`` maps a label to its losses; the one labelled ``"reference"``
    is the baseline of the right panel.
    """
    figure = Figure(figsize=FIGURE_SIZE)
    loss_axes, diff_axes = figure.subplots(1, 2)
    baseline = np.asarray(curves.get("reference", []), dtype=np.float64)
    if len(baseline):
        loss_axes.plot(np.arange(1, len(baseline) + 1), baseline, color="black", linewidth=3, alpha=0.35,
                       label="reference")
    adapters = [(label, losses) for label, losses in curves.items() if label != "reference"]
    for slot, (label, losses) in enumerate(adapters):  # the same colours as error_by_size
        losses = np.asarray(losses, dtype=np.float64)
        iterations = np.arange(1, len(losses) + 1)
        colour = ADAPTER_COLOURS[slot % len(ADAPTER_COLOURS)]
        loss_axes.plot(iterations, losses, color=colour, linestyle="--", marker=".", linewidth=1, label=shown(label))
        if baseline.shape == losses.shape:
            difference = np.maximum(np.abs(losses - baseline), 1e-18)
            diff_axes.plot(iterations, difference, color=colour, marker=".", label=shown(label))
    loss_axes.set_xlabel("iteration")
    loss_axes.set_ylabel("mini-batch loss J (before the update)")
    loss_axes.legend(fontsize="small")
    diff_axes.set_yscale("log")
    diff_axes.set_xlabel("iteration")
    diff_axes.set_ylabel("|J - J reference| (exact at 1e-18)")
    if diff_axes.lines:
        diff_axes.legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return _png(figure)


def optimizer_trajectories(losses: Mapping[str, Mapping[str, Sequence[float]]]) -> bytes:
    """Return the reference's loss per step in both conventions, one panel per optimizer configuration."""
    columns = 3
    rows = max(1, -(-len(losses) // columns))
    figure = Figure(figsize=OPTIMIZER_FIGURE_SIZE, dpi=DPI)
    for index, (label, curves) in enumerate(losses.items()):
        axes = figure.add_subplot(rows, columns, index + 1)
        for convention, style, colour in (("torch", "-", "C0"), ("optax", "--", "C1")):  # one colour each
            if convention in curves:
                axes.plot(range(1, len(curves[convention]) + 1), curves[convention], style, color=colour,
                          label=convention)
        axes.set_title(shown(label), fontsize=8)
        axes.set_xlabel("step", fontsize=7)
        axes.set_ylabel("loss", fontsize=7)
        axes.tick_params(labelsize=7)
        axes.legend(fontsize=7)
    if not losses:
        _no_data(figure.add_subplot(1, 1, 1), "no optimizer comparison")
    figure.suptitle("The same nominal optimizer in torch's and optax's conventions (the reference)")
    figure.tight_layout()
    return _png(figure)


def draw_figures(document: dict[str, Any]) -> dict[str, bytes]:
    """Return the figures' PNG bytes by file name."""
    records = document["records"]
    labels = [entry["label"] for entry in document["summary"]]
    networks = {network["id"]: network for network in document["networks"]}
    curves = document["training_curves"]["losses"]
    return {
        FIGURE_FILES["distribution"]: error_distribution(records, labels),
        FIGURE_FILES["size"]: error_by_size(records, networks, labels),
        FIGURE_FILES["training"]: training_curves(
            curves, f"Document {TRAINING_FIGURE_EXAMPLE}: mini-batch training loss, reference and adapters"
        ),
        FIGURE_FILES["optimizers"]: optimizer_trajectories(document.get("optimizers", {}).get("losses", {})),
    }
