"""Fluent answers from a teacher model (`pixiu.teacher`), grounded in knowledge-graph facts.

Every answer is cached as it arrives (see `pixiu.teacher.TeacherCache`): an interrupted run loses nothing
and a second run asks nothing that is already cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixiu import PixiuError
from pixiu.teacher import Teacher, TeacherCache

from pixiu_medical.kg import RELATIONS, TEXT_TYPE
from pixiu_medical.parser import KEY_POINTS
from pixiu_medical.safety import unsafe_dose

SYSTEM_PROMPT = (
    "你是医学科普助手。只根据给出的事实，用不超过60个汉字流畅地回答问题；不要编造事实，不要给出具体剂量；"
    "涉及用药或治疗时提醒遵医嘱。只输出答案。"
)
MAX_TOKENS = 200
"""Room for 60 Chinese characters on most tokenizers."""
DOSE_ADVICE = "具体用药请遵医嘱。"


def answer_teacher(url: str, model: str, cache: TeacherCache, **options: Any) -> Teacher:
    """A teacher that answers from given facts only; `options` go to `Teacher`."""
    return Teacher(url, model, cache, system_prompt=SYSTEM_PROMPT, max_tokens=MAX_TOKENS, **options)


def teacher_prompt(record: dict[str, Any]) -> str:
    """The prompt asking the teacher to answer a record's question from the record's facts only."""
    lines = [f"问题：{record['instruction']}", "已知事实："]
    grouped: dict[tuple[str, str], list[str]] = {}
    for head, relation, tail in record.get("facts", []):
        grouped.setdefault((head, relation), []).append(tail)
    for (head, relation), tails in grouped.items():
        lines.append(f"- {head}的{RELATIONS[relation][1]}：{'、'.join(tails)}")
    return "\n".join(lines)


def with_teacher_answers(records: Iterable[dict[str, Any]], teacher: Teacher) -> list[dict[str, Any]]:
    """Replace each record's template answer by the teacher's, followed by a line listing its facts.

    The key-point line (`要点：A、B。`) keeps the facts in the gold answer, where the parser finds them for
    knowledge recall. An answer that states a dose without advising a doctor gets `DOSE_ADVICE` added.

    Returns:
        The records with `output` replaced and `answer_source` set to "teacher".

    Raises:
        PixiuError: The teacher fails (see `pixiu.teacher.Teacher.ask`) or answers an empty message.
    """
    rewritten = []
    for record in records:
        answer = " ".join(teacher.ask(teacher_prompt(record)).split())
        if not answer:
            raise PixiuError(f"teacher {teacher.url} answered an empty message; try another --teacher-model")
        if unsafe_dose(answer):
            answer += DOSE_ADVICE
        terms = list(dict.fromkeys(_stated_terms(record)))
        output = f"{answer}\n{KEY_POINTS}{'、'.join(terms)}。" if terms else answer
        rewritten.append({**record, "output": output, "answer_source": "teacher"})
    return rewritten


def _stated_terms(record: dict[str, Any]) -> list[str]:
    """The fact terms a record's answer states: the diseases of a reverse question, else the non-text tails."""
    facts = record.get("facts", [])
    if record.get("kind") == "reverse":
        return [head for head, _, _ in facts]
    return [tail for _, relation, tail in facts if RELATIONS[relation][2] != TEXT_TYPE]

