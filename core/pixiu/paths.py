"""Where pixiu keeps its state: models, runs and the adapter registry under PIXIU_HOME (default ~/.pixiu)."""

from __future__ import annotations

import os
from pathlib import Path


def pixiu_home() -> Path:
    """Return PIXIU_HOME, or ~/.pixiu when it is unset; the folder is created on demand by callers."""
    return Path(os.environ.get("PIXIU_HOME") or Path.home() / ".pixiu").expanduser()


def models_dir() -> Path:
    """Folder of converted base models (GGUF → plain HF folders) and fetched wheels."""
    return pixiu_home() / "models"


def runs_dir() -> Path:
    """Default parent folder of training run directories."""
    return pixiu_home() / "runs"
