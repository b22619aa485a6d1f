"""Files as pixiu and its plugins write them: atomic replacement, JSON lines in UTF-8, and locks across processes.

Every file pixiu writes in place goes through `atomic_write_text` (or the JSON helpers on top of it), so a
crash leaves the old file or the new one, never half of it. Plugins use the same helpers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_UMASK = os.umask(0o22)  # the file-creation mask, which files written here honour as open()'s do;
os.umask(_UMASK)  # it can only be read by setting it, so it is put back at once, at import


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) atomically, creating its folder when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file 0600; give it what open() would
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """Replace `path` with `data` as indented JSON, Chinese kept readable, atomically."""
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def to_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """Serialise rows as JSON lines (Chinese kept readable, not \\u-escaped)."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Replace `path` with one JSON object per line, atomically."""
    atomic_write_text(path, to_jsonl(rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every JSON object of a JSON-lines file written by pixiu (blank lines skipped).

    For user-supplied data, whose lines may be malformed, use `pixiu.records.load_examples`, which
    reports `file:line` for each bad one.
    """
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@contextlib.contextmanager
def locked(path: Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created when missing) across processes, for a read-modify-write.

    With `blocking=False`, raise `BlockingIOError` at once when another process holds it, instead of waiting.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
