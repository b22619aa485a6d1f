"""Turn model text (or a gold answer) into the charges it names, and with `parse_answer` its articles and term too."""

from __future__ import annotations

import re
import unicodedata

from pixiu_law.answer import LawAnswer
from pixiu_law.charges import KNOWN_CHARGES, normalize_charge
from pixiu_law.judgment import parse_articles, parse_term

_SEGMENT = re.compile(r"(?:罪名\s*:|\[罪名\])\s*([^\n。<]*)")
"""A canonical answer, `罪名：A；B` (or LawBench's `[罪名]A;B<eoa>`), in NFKC-normalised text."""
_ITEM_SEPARATOR = re.compile(r";")
_FILLER = re.compile(r"[、,和及与罪/\s]*")
"""What may sit between charge names inside one item, e.g. 盗窃罪、诈骗罪 or 盗窃和诈骗."""
_MAX_ITEM_CHARS = 40
"""Longer than any charge name (the longest has 31 characters): such an item is prose, not a name."""
_BY_LENGTH = sorted(KNOWN_CHARGES, key=lambda name: (-len(name), name))


def parse_charges(text: str) -> frozenset[str]:
    """Map free model text, or a gold answer, to the set of charges it names.

    When the text holds a canonical segment (`罪名：A；B`), its items are taken, normalised, even if
    they are not known charge names, so parsing a gold answer returns exactly the gold set. An item
    made only of known names and joiners (盗窃罪、诈骗罪) gives those names. Without a segment, known
    charge names are found in the text, longest first and never overlapping (信用卡诈骗, not 诈骗).
    Text around a segment is ignored, so reasoning such as "不构成诈骗罪" adds nothing.

    Args:
        text: Model output or a gold answer.

    Returns:
        Canonical charge names (see `normalize_charge`); empty for empty or unrelated text.
    """
    text = unicodedata.normalize("NFKC", text)
    segments = _SEGMENT.findall(text)
    if not segments:
        return frozenset(_scan(text)[0])
    charges: set[str] = set()
    for segment in segments:
        for item in _ITEM_SEPARATOR.split(segment):
            charges.update(_parse_item(item))
    return frozenset(charges)


def _parse_item(item: str) -> set[str]:
    """Parse one item of a canonical segment: a known name, known names with joiners, or a new name."""
    name = normalize_charge(item)
    if not name:
        return set()
    if name in KNOWN_CHARGES:
        return {name}
    found, rest = _scan(name)
    if len(name) > _MAX_ITEM_CHARS or (found and _FILLER.fullmatch(rest)):
        return set(found)
    return {name}


def _scan(text: str) -> tuple[list[str], str]:
    """Find known charge names, longest first and non-overlapping; also return the text left over."""
    taken = [False] * len(text)
    found: list[str] = []
    for name in _BY_LENGTH:
        start = text.find(name)
        while start != -1:
            end = start + len(name)
            if not any(taken[start:end]):
                taken[start:end] = [True] * len(name)
                found.append(name)
            start = text.find(name, start + 1)
    rest = "".join(char for char, used in zip(text, taken, strict=True) if not used)
    return found, rest


def parse_answer(text: str) -> LawAnswer:
    """Map free model text, or a gold answer, to the charges, relevant articles and prison term it gives.

    Each part is read as its own reader reads it (`parse_charges`, `parse_articles`, `parse_term`), from its
    canonical line when the text has one (`罪名：…`, `法条：…`, `刑期：…`), else from the whole text.

    Args:
        text: Model output or a gold answer.

    Returns:
        The parts found; empty sets and a None term for what the text does not give.
    """
    normal = unicodedata.normalize("NFKC", text)
    return LawAnswer(charges=parse_charges(normal), articles=parse_articles(normal), term=parse_term(normal))
