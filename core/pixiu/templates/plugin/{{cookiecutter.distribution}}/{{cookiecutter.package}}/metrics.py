"""Scores over parsed answers: exact match and token F1 (words, and single characters for Chinese)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\W\u4e00-\u9fff]+")


def answer_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Exact match and mean token F1 of `predictions` against `references`, both ×100.

    pixiu passes one prediction per reference, at least one, and counts the records itself.
    """
    exact = sum(p == r for p, r in zip(predictions, references, strict=True))
    f1 = sum(token_f1(p, r) for p, r in zip(predictions, references, strict=True))
    return {"exact_match": 100.0 * exact / len(references), "token_f1": 100.0 * f1 / len(references)}


def token_f1(prediction: str, reference: str) -> float:
    """F1 between the token multisets of two answers (1.0 when both are empty)."""
    predicted, expected = Counter(_TOKEN.findall(prediction)), Counter(_TOKEN.findall(reference))
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((predicted & expected).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(predicted.values()), overlap / sum(expected.values())
    return 2 * precision * recall / (precision + recall)
