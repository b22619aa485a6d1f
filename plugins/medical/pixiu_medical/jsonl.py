"""JSON lines as every pixiu_medical file is written: UTF-8, one object per line, replaced atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """Serialise rows as UTF-8 JSON lines (Chinese kept readable, not \\u-escaped)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows to `path` atomically: a crash leaves the old file or the new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(to_jsonl(rows), encoding="utf-8")
    os.replace(tmp, path)
