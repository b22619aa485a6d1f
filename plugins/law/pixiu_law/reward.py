"""The law domain's reward: how well one answer's charges match the case's charges."""

from __future__ import annotations

from collections.abc import Iterable

from pixiu import Messages
from pixiu_law.parser import parse_charges


def charge_reward(prompt: Messages, answer: str, reference: Iterable[str]) -> float:
    """Score one answer by the F1 of the charges it names (`parse_charges`) against the reference charges.

    Args:
        prompt: The chat messages the answer replies to (unused: the charges decide).
        answer: The model's answer, chat tokens stripped.
        reference: The case's charges (the formatter's reference).

    Returns:
        F1 in [0, 1]: 1.0 for exactly the reference's charges (or none when the case has none), 0.0 when
        either side is empty or nothing matches, as for empty or unrelated text.
    """
    return charge_f1(parse_charges(answer), reference)


def charge_f1(predicted: Iterable[str], reference: Iterable[str]) -> float:
    """F1 of two charge sets: 1.0 when both are empty, 0.0 when only one is."""
    pred, gold = frozenset(predicted), frozenset(reference)
    if not pred and not gold:
        return 1.0
    hits = len(pred & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(pred), hits / len(gold)
    return 2 * precision * recall / (precision + recall)
