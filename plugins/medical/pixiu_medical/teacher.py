"""Fluent answers from a teacher model (`pixiu.teacher`), grounded in knowledge-graph facts.

Every answer is cached as it arrives (see `pixiu.teacher.TeacherCache`): an interrupted run loses nothing
and a second run asks nothing that is already cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pixiu import PixiuError
from pixiu.teacher import Teacher, TeacherCache
from pixiu_medical.kg import RELATIONS
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
    """Replace each record's template answer by the teacher's.

    The record keeps its `facts`, from which the formatter builds the reference knowledge recall checks,
    so the answer needs no list of them. An answer that states a dose without advising a doctor gets
    `DOSE_ADVICE` added.

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
        rewritten.append({**record, "output": answer, "answer_source": "teacher"})
    return rewritten
