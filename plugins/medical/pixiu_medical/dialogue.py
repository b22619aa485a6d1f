"""Doctor–patient dialogue CSV (`department,title,ask,answer`, Toyhom's Chinese-medical-dialogue-data) -> records."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from pixiu import PixiuError

FIELDS = ("department", "title", "ask", "answer")
ENCODINGS = ("utf-8-sig", "gb18030")
"""Tried in order: the published files are GB18030, re-saved copies are often UTF-8."""


def read_dialogue_csv(path: Path) -> Iterator[dict[str, str]]:
    """Yield one record per CSV row with exactly the keys of FIELDS (a missing cell is "").

    Rows are not judged here: `pixiu_medical.formatter.format_record` rejects an unusable one with a reason.

    Raises:
        PixiuError: The file is missing, in neither encoding, or its header lacks one of FIELDS.
    """
    path = Path(path)
    if not path.is_file():
        raise PixiuError(f"CSV file not found: {path}")
    text = _decode(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [name for name in FIELDS if name not in (reader.fieldnames or [])]
    if missing:
        raise PixiuError(
            f"{path}: the header lacks {', '.join(missing)}; expected the columns {','.join(FIELDS)} "
            f"(found {reader.fieldnames})"
        )
    for row in reader:
        yield {name: (row.get(name) or "") for name in FIELDS}


def _decode(path: Path) -> str:
    """The file's text in the first encoding of ENCODINGS that decodes it."""
    data = path.read_bytes()
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise PixiuError(f"{path}: not text in {' or '.join(ENCODINGS)}; re-save it as UTF-8")
