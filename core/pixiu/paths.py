"""Where pixiu keeps its state: models, runs and the adapter registry under PIXIU_HOME (default ~/.pixiu)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pixiu.errors import PixiuError


def pixiu_home() -> Path:
    """Return PIXIU_HOME, or ~/.pixiu when it is unset; the folder is created on demand by callers."""
    return Path(os.environ.get("PIXIU_HOME") or Path.home() / ".pixiu").expanduser()


def models_dir() -> Path:
    """Folder of converted base models (GGUF → plain HF folders) and fetched wheels."""
    return pixiu_home() / "models"


def runs_dir() -> Path:
    """Default parent folder of training run directories."""
    return pixiu_home() / "runs"


def ensure_writable(folder: Path, what: str, fix: str) -> None:
    """Check, before any work, that files can be written in `folder` (or in what of it exists yet), else raise.

    Args:
        folder: The folder a command will write into; it need not exist yet.
        what: What the folder is, for the message ("run folder", "PIXIU_HOME").
        fix: What the user should do instead ("pass --output DIR").

    Raises:
        PixiuError: A part of the path is a file, or the nearest existing folder refuses a new file.
    """
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise PixiuError(f"{what} {folder} cannot be created: {existing} is a file, not a folder; {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        message = f"{what} {folder} is not writable: cannot create a file in {existing} ({exc.strerror}); {fix}"
        raise PixiuError(message) from exc
