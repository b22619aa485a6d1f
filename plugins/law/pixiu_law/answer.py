"""A case answer's parts (charges, relevant articles, prison term), their canonical text and their reference form.

CAIL2018 has three tasks on the same records: charges (`meta.accusation`), relevant articles of the PRC
Criminal Law (`meta.relevant_articles`) and the prison term (`meta.term_of_imprisonment`). A run picks
any of them (`LawSettings.tasks`); its gold answer gives the picked parts one per line, e.g.

    罪名：盗窃
    法条：第264条
    刑期：8个月

with `刑期：死刑` or `刑期：无期徒刑` for the death penalty and life imprisonment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

Task = Literal["charges", "articles", "term"]
TASKS: tuple[Task, ...] = ("charges", "articles", "term")
"""Every task, in the order the answer gives them."""

DEATH_PENALTY = -2
"""The term of a death sentence, coded as CAIL2018's judger codes it (months of imprisonment -2)."""
LIFE_IMPRISONMENT = -1
"""The term of a life sentence, coded as CAIL2018's judger codes it (months of imprisonment -1)."""

CHARGES_PREFIX = "罪名："
ARTICLES_PREFIX = "法条："
TERM_PREFIX = "刑期："
PART_SEPARATOR = "；"
"""Between charges and between articles, within one line of the answer."""


@dataclass(frozen=True)
class LawAnswer:
    """What an answer (the model's or the gold one) says about a case; empty or None where it says nothing."""

    charges: frozenset[str] = frozenset()
    """Canonical charge names (see `pixiu_law.charges.normalize_charge`)."""
    articles: frozenset[int] = frozenset()
    """Article numbers of the PRC Criminal Law; 第133条之一 counts as 133, as CAIL2018 counts it."""
    term: int | None = None
    """Months of imprisonment, `DEATH_PENALTY` or `LIFE_IMPRISONMENT`; None when the answer gives no term."""


def answer_text(answer: LawAnswer, tasks: Iterable[Task]) -> str:
    """The canonical answer text of `answer`'s parts for `tasks`, one line each in `TASKS` order.

    Args:
        answer: The case's charges, articles and term (a term is needed when `tasks` holds "term").
        tasks: Which parts to give.

    Returns:
        E.g. "罪名：盗窃\\n法条：第264条\\n刑期：8个月"; charges and articles sorted.
    """
    chosen = set(tasks)
    lines = []
    if "charges" in chosen:
        lines.append(CHARGES_PREFIX + PART_SEPARATOR.join(sorted(answer.charges)))
    if "articles" in chosen:
        lines.append(ARTICLES_PREFIX + PART_SEPARATOR.join(f"第{n}条" for n in sorted(answer.articles)))
    if "term" in chosen:
        assert answer.term is not None, "a gold answer with a term task has a term"
        lines.append(TERM_PREFIX + term_text(answer.term))
    return "\n".join(lines)


def term_text(term: int) -> str:
    """Words for a term: 死刑, 无期徒刑, or "N个月" (CAIL counts fixed-term imprisonment and detention in months)."""
    if term == DEATH_PENALTY:
        return "死刑"
    if term == LIFE_IMPRISONMENT:
        return "无期徒刑"
    return f"{term}个月"


def cail_term(term_of_imprisonment: dict[str, Any]) -> int:
    """CAIL2018's `term_of_imprisonment` as one number: death first, then life, then months (as its judger reads it)."""
    if term_of_imprisonment["death_penalty"]:
        return DEATH_PENALTY
    if term_of_imprisonment["life_imprisonment"]:
        return LIFE_IMPRISONMENT
    return int(term_of_imprisonment["imprisonment"])


def to_reference(answer: LawAnswer, tasks: Iterable[Task]) -> list[str] | dict[str, Any]:
    """The JSON reference of a gold answer: the sorted charges alone for a charges-only run (the form runs have always
    saved, so charge-only results and tools reading them do not change), else a dict of the chosen parts."""
    chosen = [task for task in TASKS if task in set(tasks)]
    if chosen == ["charges"]:
        return sorted(answer.charges)
    parts: dict[str, Any] = {}
    if "charges" in chosen:
        parts["charges"] = sorted(answer.charges)
    if "articles" in chosen:
        parts["articles"] = sorted(answer.articles)
    if "term" in chosen:
        parts["term"] = answer.term
    return parts


def from_reference(reference: Iterable[str] | dict[str, Any]) -> tuple[LawAnswer, tuple[Task, ...]]:
    """Read a reference (`to_reference`'s output, or a plain charge list) back: its gold parts and its tasks."""
    if not isinstance(reference, dict):
        return LawAnswer(charges=frozenset(reference)), ("charges",)
    answer = LawAnswer(
        charges=frozenset(reference.get("charges", ())),
        articles=frozenset(reference.get("articles", ())),
        term=reference.get("term"),
    )
    return answer, tuple(task for task in TASKS if task in reference)
