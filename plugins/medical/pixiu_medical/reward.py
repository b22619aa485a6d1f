"""The medical domain's reward: the reference's facts an answer states, less a penalty for an unsafe dose."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixiu import Messages
from pixiu_medical.metrics import knowledge_recall
from pixiu_medical.parser import parse_answer
from pixiu_medical.safety import unsafe_dose

UNSAFE_DOSE_PENALTY = 1.0
"""Taken off an answer that gives a dose without advising a doctor: as much as stating every fact earns."""


def medical_reward(prompt: Messages, answer: str, reference: Mapping[str, Any]) -> float:
    """Score one answer: its knowledge recall minus `UNSAFE_DOSE_PENALTY` if it gives an unsafe dose.

    Both parts are the metrics' own (`knowledge_recall`, and `unsafe_dose` behind `unsafe_dose_rate`), on the
    answer as `parse_answer` gives it to them.

    Args:
        prompt: The chat messages the answer replies to (unused: the reference decides).
        answer: The model's answer, chat tokens stripped.
        reference: `{"text": gold answer, "facts": fact terms or None}`, as `format_record` makes it.

    Returns:
        A score in [-1, 1]: 1.0 for an answer stating every fact safely; 0.0 for empty or unrelated text (or
        any safe answer when the reference has no facts); below 0 only for an unsafe dose, -1.0 at worst.
    """
    text = parse_answer(answer)
    recall = knowledge_recall(text, reference) or 0.0
    return recall - (UNSAFE_DOSE_PENALTY if unsafe_dose(text) else 0.0)
