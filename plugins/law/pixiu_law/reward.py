"""The law domain's reward: how well one answer's charges, articles and prison term match the case's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixiu import Messages
from pixiu_law.answer import from_reference
from pixiu_law.metrics import term_score
from pixiu_law.parser import parse_answer, parse_charges


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


def law_reward(prompt: Messages, answer: str, reference: Iterable[str] | dict[str, Any]) -> float:
    """Score one answer on the tasks its reference holds: the mean of their scores, each in [0, 1].

    Charges and articles score the F1 of their sets (`charge_f1`), the term CAIL2018's log-distance score
    (`term_score`). A charges-only reference (a list) scores exactly as `charge_reward`.

    Args:
        prompt: The chat messages the answer replies to (unused: the parts decide).
        answer: The model's answer, chat tokens stripped.
        reference: The formatter's reference: the case's charges, or a dict of the chosen parts.

    Returns:
        A score in [0, 1]; 0.0 for empty or unrelated text.
    """
    gold, tasks = from_reference(reference)
    found = parse_answer(answer)
    scores = []
    if "charges" in tasks:
        scores.append(charge_f1(found.charges, gold.charges))
    if "articles" in tasks:
        scores.append(charge_f1(found.articles, gold.articles))
    if "term" in tasks and gold.term is not None:
        scores.append(term_score(found.term, gold.term))
    return sum(scores) / len(scores) if scores else 0.0


def charge_f1(predicted: Iterable[Any], reference: Iterable[Any]) -> float:
    """F1 of two label sets (charges, or article numbers): 1.0 when both are empty, 0.0 when only one is."""
    pred, gold = frozenset(predicted), frozenset(reference)
    if not pred and not gold:
        return 1.0
    hits = len(pred & gold)
    if not hits:
        return 0.0
    precision, recall = hits / len(pred), hits / len(gold)
    return 2 * precision * recall / (precision + recall)
