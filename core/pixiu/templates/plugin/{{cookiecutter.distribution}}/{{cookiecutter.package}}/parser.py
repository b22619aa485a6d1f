"""Model text (or a gold answer) -> the form the metrics compare."""

from __future__ import annotations

import re


def parse_answer(text: str) -> str:
    """The first line of `text`, lower-cased, with runs of spaces collapsed and closing punctuation dropped."""
    lines = text.strip().splitlines()
    first_line = lines[0] if lines else ""
    return re.sub(r"\s+", " ", first_line).strip().rstrip(".!。！").lower()
