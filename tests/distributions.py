"""Fake installed distributions: a `.dist-info` on a sys.path entry is all importlib.metadata needs."""

from __future__ import annotations

from pathlib import Path


def add_distribution(folder: Path, distribution: str, entry_points: dict[str, str]) -> None:
    """Write a `.dist-info` into `folder` (a sys.path entry) declaring `entry_points` in the `pixiu` group."""
    dist_info = folder / f"{distribution.replace('-', '_')}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (dist_info / "entry_points.txt").write_text(f"[pixiu]\n{lines}")
