"""Model text (or a reference) -> the summary it states, as one clean line."""

from __future__ import annotations

import re

_LEAD = re.compile(r"^\s*(?:总结|概括|摘要|要点|标题|summary)\s*[:：]\s*", re.IGNORECASE)
"""A label the model may put before its summary."""
_QUOTE_PAIRS = (("“", "”"), ("‘", "’"), ("「", "」"), ("『", "』"), ('"', '"'), ("'", "'"))
"""Quotes a model may wrap its whole summary in (not 《》, which mark a title inside the summary)."""


def parse_summary(text: str) -> str:
    """Return the summary a model wrote: its first non-empty line, without label or wrapping quotes.

    Args:
        text: Model output (pixiu has stripped its chat tokens) or a reference summary.

    Returns:
        One line with whitespace collapsed; "" when the text holds nothing.
    """
    line = next((line for line in (text or "").splitlines() if line.strip()), "")
    line = " ".join(_LEAD.sub("", line, count=1).split())
    for opening, closing in _QUOTE_PAIRS:
        inner = line[len(opening) : -len(closing)]
        wrapped = len(line) > 2 and line.startswith(opening) and line.endswith(closing)
        if wrapped and opening not in inner and closing not in inner:
            return inner.strip()
    return line
