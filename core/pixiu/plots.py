"""The pictures of a run: the loss curve saved in every run directory, and the charts of its report."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

VARIANT_COLOURS = {"base": "#9aa5b1", "adapter": "#2f6fde", "chosen": "#3a9a5b"}
"""One colour per variant, the same in every chart."""


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (imported late: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_log(log_path: Path) -> list[dict[str, Any]]:
    """The rows of a `train_log.jsonl`."""
    return [json.loads(line) for line in Path(log_path).read_text(encoding="utf-8").splitlines() if line.strip()]


def loss_curve_png(rows: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """Training loss per step, as PNG bytes."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=1.2)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (answer tokens)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    return _png(plt, figure)


def plot_loss_curve(log_path: Path, image_path: Path, title: str) -> None:
    """Draw training loss per step from a `train_log.jsonl` into a PNG."""
    Path(image_path).write_bytes(loss_curve_png(read_log(log_path), title))


def variant_bars_png(scores: Mapping[str, Mapping[str, float]], title: str) -> bytes:
    """One small bar chart per measure, a bar per variant (`{measure: {variant: value}}`), as PNG bytes; each
    measure keeps its own scale."""
    plt = _pyplot()
    columns = min(len(scores), 4)
    rows = -(-len(scores) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), dpi=100, squeeze=False)
    for axes, (measure, values) in zip(grid.flat, scores.items(), strict=False):
        names = list(values)
        bars = axes.bar(names, [values[n] for n in names], color=[VARIANT_COLOURS.get(n, "#777777") for n in names])
        axes.bar_label(bars, fmt="%.2f", fontsize=8)
        axes.set_title(measure, fontsize=9)
        axes.tick_params(labelsize=8)
        low, high = min(0.0, *values.values()), max(0.0, *values.values())
        axes.set_ylim(low * 1.15, high * 1.15 if high > 0 else 1.0)  # a zero bar still shows on a 0-based axis
    for axes in list(grid.flat)[len(scores) :]:
        axes.set_visible(False)
    figure.suptitle(title, fontsize=10)
    return _png(plt, figure)


def _png(plt: Any, figure: Any) -> bytes:
    """A finished figure as PNG bytes; the figure is closed."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()
