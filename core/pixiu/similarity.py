"""Text overlap for filtering and scoring: ROUGE-L on units that suit Chinese and English alike.

Chinese has no spaces, so each CJK character is one unit; Latin words and numbers are one unit each,
lower-cased. Alpaca's self-instruct filter and the general chat domain's metric both use it.
"""

from __future__ import annotations

import re

CJK_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
"""CJK Unified Ideographs, Extension A and Compatibility Ideographs, as a regex character-class body."""
_CJK = re.compile(f"[{CJK_RANGES}]")
_UNIT = re.compile(f"[{CJK_RANGES}]|(?:(?![{CJK_RANGES}])[^\\W_])+")
"""One CJK ideograph, or one run of other letters and digits (so "gpt模型" gives "gpt", "模", "型")."""


def text_units(text: str) -> list[str]:
    """Split `text` into ROUGE units: each CJK character alone, other words and numbers whole, lower-cased."""
    return _UNIT.findall(text.lower())


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure in [0, 1] of `candidate` against `reference` on `text_units`; 0 if either has none."""
    from rouge_chinese import Rouge

    hypothesis, gold = text_units(candidate), text_units(reference)
    if not hypothesis or not gold:
        return 0.0
    score = Rouge(metrics=["rouge-l"]).get_scores(" ".join(hypothesis), " ".join(gold))[0]["rouge-l"]["f"]
    return float(score)


def is_chinese(text: str) -> bool:
    """Whether at least half of `text`'s ROUGE units are CJK characters (False for text without units)."""
    units = text_units(text)
    return bool(units) and 2 * sum(bool(_CJK.fullmatch(unit)) for unit in units) >= len(units)
