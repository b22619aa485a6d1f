"""Preference pairs from votes: within one question, a clearly more up-voted answer is `chosen` over a less voted one.

Written in the standard prompt/chosen/rejected form (as TRL's DPO and reward trainers read it), one JSON
line per pair, with a `meta` object naming the question, both answers and their votes.
"""

from __future__ import annotations

from typing import Any

from pixiu import BadRecord, Preference
from pixiu_zhihu.formatter import answer_votes

DEFAULT_MARGIN = 10
"""At least this many more up-votes for the chosen answer."""
DEFAULT_RATIO = 2.0
"""And at least this many times the rejected answer's up-votes, so 1000 vs 990 is not a preference."""
DEFAULT_MAX_PAIRS = 10
"""Pairs per question at most, so a question with hundreds of answers does not dominate."""


def preference_pairs(
    record: dict[str, Any],
    *,
    margin: int = DEFAULT_MARGIN,
    ratio: float = DEFAULT_RATIO,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> list[dict[str, Any]]:
    """Pair a question's answers by votes: chosen when it beats the other by `margin` votes and by `ratio` times.

    Candidates are taken most-voted first as `chosen`, each against the least-voted answers first, so the
    clearest contrasts come first; answers without text, or with the same text, are never paired.

    Args:
        record: A Zhihu question record (`question_id`, `title`, `detail`, `answers`).
        margin: Minimum difference in up-votes.
        ratio: Minimum ratio of up-votes (chosen >= ratio × rejected).
        max_pairs: Pairs kept for this question at most.

    Returns:
        `{"prompt", "chosen", "rejected", "meta"}` dicts; the prompt is the title, then the detail.
    """
    answers = [
        (answer_votes(a), index, a)
        for index, a in enumerate(record.get("answers") or [])
        if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip()
    ]
    by_votes = sorted(answers, key=lambda row: (-row[0], row[1]))
    prompt = "\n".join(filter(None, (str(record.get(key) or "").strip() for key in ("title", "detail"))))
    pairs: list[dict[str, Any]] = []
    for chosen_votes, _, chosen in by_votes:
        for rejected_votes, _, rejected in reversed(by_votes):
            if len(pairs) == max_pairs:
                return pairs
            if chosen_votes - rejected_votes < margin or chosen_votes < ratio * rejected_votes:
                break  # the rest are voted higher still
            if chosen["text"].strip() == rejected["text"].strip():
                continue
            pairs.append(
                {
                    "prompt": prompt,
                    "chosen": chosen["text"].strip(),
                    "rejected": rejected["text"].strip(),
                    "meta": {
                        "question_id": record.get("question_id"),
                        "chosen_id": chosen.get("answer_id"),
                        "rejected_id": rejected.get("answer_id"),
                        "chosen_votes": chosen_votes,
                        "rejected_votes": rejected_votes,
                    },
                }
            )
    return pairs


def vote_preferences(record: dict[str, Any]) -> list[Preference]:
    """The domain's preference formatter: a question record's vote pairs as pixiu `Preference`s, the question as
    the user's turn (for `pixiu domain train zhihu --method dpo`)."""
    if not isinstance(record.get("answers"), list):
        raise BadRecord("a zhihu question record needs an 'answers' list to pair answers by votes")
    return [
        Preference([{"role": "user", "content": pair["prompt"]}], pair["chosen"], pair["rejected"])
        for pair in preference_pairs(record)
    ]
