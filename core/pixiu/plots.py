"""The loss-curve picture saved in every run directory."""

from __future__ import annotations

import json
from pathlib import Path


def plot_loss_curve(log_path: Path, image_path: Path, title: str) -> None:
    """Draw training loss per step from a `train_log.jsonl` into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in Path(log_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot([r["step"] for r in rows], [r["loss"] for r in rows], linewidth=1.2)
    axes.set_xlabel("step")
    axes.set_ylabel("loss (answer tokens)")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(image_path)
    plt.close(figure)
