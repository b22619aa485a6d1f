"""Where the law tests find shared real data (never shipped; tests skip when it is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SHARED_LAW = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "law"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def read_jsonl_or_skip(name: str) -> list[dict[str, Any]]:
    """Read a JSONL file of shared/data/law, or skip the test when it is not there."""
    path = SHARED_LAW / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
