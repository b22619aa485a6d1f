"""Where the zhihu tests find shared real data (never shipped; tests skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_SUMMARIZATION = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "summarization"


def csl_or_skip(split: str) -> Path:
    """The CSL title-generation TSV of `split` ("dev" or "test"), or skip the test when it is not there."""
    path = SHARED_SUMMARIZATION / f"csl_ts_{split}.tsv"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path
