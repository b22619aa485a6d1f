"""Raw law records (CAIL2018 JSONL, LawBench JSON, crawled cases) -> examples for charges, articles and prison terms.

Which of CAIL2018's three tasks a run trains and scores is the recipe's `plugins.law.tasks` (`LawSettings`):
charges only by default; relevant articles and the prison term need CAIL2018 records, whose `meta` holds
`relevant_articles` and `term_of_imprisonment`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from pixiu import BadRecord, Example
from pixiu.config import Section
from pixiu_law.answer import TASKS, LawAnswer, Task, answer_text, cail_term, to_reference
from pixiu_law.charges import normalize_charge

SYSTEM_PROMPT = "你是刑事法律助手，根据案情判断罪名。"
QUESTION = "被告人犯了什么罪？"
TASK_PROMPTS: dict[Task, tuple[str, str]] = {
    "charges": ("罪名", "犯了什么罪"),
    "articles": ("相关法条", "适用刑法哪些条文"),
    "term": ("刑期", "应判处什么刑罚"),
}
"""(what the system prompt asks for, how the question asks it) per task, for runs that are not charges only."""
MAX_FACT_CHARS = 400
"""Facts are cut to this many characters (about 1,200 tokens on SmolLM2's tokenizer) so that a long
judgment never pushes the gold answer out of the model's context. CAIL2018's median fact has 311."""

_PROSECUTION_LEAD = re.compile(r"^[^。；;，,]{0,40}?(?:机关|检察院)[^。；;，,]{0,10}?指控\s*[：:，,]\s*")
"""Boilerplate such as "公诉机关指控：" or "北京市通州区人民检察院指控：", dropped to save tokens."""
_WHITESPACE = re.compile(r"\s+")
_LAWBENCH_FACT = re.compile(r"^\s*事实\s*[:：]\s*")
_LAWBENCH_ANSWER = re.compile(r"^\s*罪名\s*[:：]\s*")
_LAWBENCH_SPLIT = re.compile(r"[;；]")
_SENTENCE_END = "。；;！？"


class LawSettings(Section, frozen=True):
    """The law domain's recipe section `plugins.law`: which CAIL2018 tasks a run trains and scores."""

    tasks: list[Task] = Field(["charges"], min_length=1)
    """Parts of the answer, any of "charges" (罪名), "articles" (relevant Criminal Law articles, 法条) and "term"
    (prison term, 刑期); the answer gives them in that order whatever the order here. Articles and term need
    CAIL2018 records (`meta.relevant_articles`, `meta.term_of_imprisonment`)."""

    @field_validator("tasks")
    @classmethod
    def _distinct(cls, tasks: list[Task]) -> list[Task]:
        """Refuse a task named twice, which is most likely a typo for another one."""
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"names a task twice: {tasks}; give each of {list(TASKS)} at most once")
        return tasks


DEFAULT_SETTINGS = LawSettings()
"""Charges only: the headline CAIL2018 task, and the answer every earlier run trained on."""


def format_record(record: dict[str, Any], settings: LawSettings = DEFAULT_SETTINGS) -> Example:
    """Turn one law record into system, user and gold assistant messages, with the gold parts as reference.

    Accepted shapes: CAIL2018 (`fact`, `meta.accusation` list; crawled cases use the same) and
    LawBench (`question` "事实:…", `answer` "罪名:A;B"; charges only). The answer gives the parts of
    `settings.tasks`, one line each (`罪名：A；B`, `法条：第264条`, `刑期：8个月`, see `pixiu_law.answer`), with
    charges normalised, de-duplicated and sorted by code point, so one charge set always reads the same.
    A charges-only run keeps the original prompt and answer `罪名：A；B`.

    Args:
        record: One raw record.
        settings: The recipe's `plugins.law` section (the tasks).

    Returns:
        Three chat messages (the last is the gold answer) and the reference: the sorted charges for a charges-only
        run, else a dict of the chosen parts (see `pixiu_law.answer.to_reference`).

    Raises:
        BadRecord: The record has no usable facts or charges, lacks what a chosen task needs, or is of an
            unknown shape.
    """
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object per record, found {type(record).__name__}")
    if "fact" in record:
        fact, charges = _read_cail(record)
    elif "question" in record:
        fact, charges = _read_lawbench(record)
    else:
        raise BadRecord(
            "unknown record format: expected CAIL2018 fields `fact` and `meta.accusation`, or LawBench "
            f'fields `question` ("事实:…") and `answer` ("罪名:…"); found keys {sorted(record)}'
        )
    tasks = [task for task in TASKS if task in settings.tasks]
    gold = LawAnswer(
        charges=frozenset(charges),
        articles=_read_articles(record) if "articles" in tasks else frozenset(),
        term=_read_term(record) if "term" in tasks else None,
    )
    messages = [*prompt_messages(fact, tasks), {"role": "assistant", "content": answer_text(gold, tasks)}]
    return Example(messages, reference=to_reference(gold, tasks))


def prompt_messages(fact: str, tasks: list[Task]) -> list[dict[str, str]]:
    """The system and user messages asking for `tasks` about the case `fact`, as training writes them."""
    system, question = _prompts(tasks)
    return [{"role": "system", "content": system}, {"role": "user", "content": f"{_clean_fact(fact)}\n{question}"}]


def _prompts(tasks: list[Task]) -> tuple[str, str]:
    """The system prompt and question asking for `tasks`; a charges-only run keeps SYSTEM_PROMPT and QUESTION."""
    if tasks == ["charges"]:
        return SYSTEM_PROMPT, QUESTION
    asked, questions = zip(*(TASK_PROMPTS[task] for task in tasks), strict=True)
    return f"你是刑事法律助手，根据案情判断{'、'.join(asked)}。", f"被告人{'，'.join(questions)}？"


def _read_articles(record: dict[str, Any]) -> frozenset[int]:
    """The relevant articles of a CAIL2018 record (`meta.relevant_articles`), for the articles task."""
    articles = _task_field(record, "relevant_articles", "articles", "a list of article numbers such as [264]")
    if not isinstance(articles, list) or not articles or not all(_is_count(n) and n > 0 for n in articles):
        raise BadRecord(
            f"field `meta.relevant_articles` must be a non-empty list of article numbers such as [264], "
            f"found {_preview(articles)}"
        )
    return frozenset(articles)


def _read_term(record: dict[str, Any]) -> int:
    """The prison term of a CAIL2018 record (`meta.term_of_imprisonment`) in CAIL's coding, for the term task."""
    term = _task_field(
        record,
        "term_of_imprisonment",
        "term",
        'an object {"death_penalty": false, "life_imprisonment": false, "imprisonment": 8}',
    )
    if (
        not isinstance(term, dict)
        or not isinstance(term.get("death_penalty"), bool)
        or not isinstance(term.get("life_imprisonment"), bool)
        or not _is_count(term.get("imprisonment"))
    ):
        raise BadRecord(
            "field `meta.term_of_imprisonment` must hold `death_penalty` and `life_imprisonment` (true/false) and "
            f"`imprisonment` (months, a whole number >= 0), found {_preview(term)}"
        )
    return cail_term(term)


def _task_field(record: dict[str, Any], field: str, task: str, expected: str) -> Any:
    """`record["meta"][field]`, or BadRecord saying that the chosen `task` needs it and how to do without it."""
    meta = record.get("meta")
    if not isinstance(meta, dict) or field not in meta:
        shape = "a LawBench record" if "question" in record else "the record"
        raise BadRecord(
            f"task `{task}` needs field `meta.{field}` ({expected}), which {shape} lacks; use CAIL2018 records "
            f"or drop `{task}` from plugins.law.tasks"
        )
    return meta[field]


def _is_count(value: Any) -> bool:
    """Whether `value` is a whole number >= 0 (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_cail(record: dict[str, Any]) -> tuple[str, list[str]]:
    """Return the facts and charges of a CAIL2018-shaped record."""
    fact = _require_text(record["fact"], "fact")
    meta = record.get("meta")
    if not isinstance(meta, dict) or "accusation" not in meta:
        found = "no `meta`" if meta is None else f"`meta` = {_preview(meta)}"
        raise BadRecord(f"field `meta.accusation` is missing ({found}); expected a list of charge names")
    accusation = meta["accusation"]
    if not isinstance(accusation, list) or not all(isinstance(item, str) for item in accusation):
        raise BadRecord(
            f'field `meta.accusation` must be a list of strings such as ["盗窃"], found {_preview(accusation)}'
        )
    return fact, _require_charges(accusation, "meta.accusation")


def _read_lawbench(record: dict[str, Any]) -> tuple[str, list[str]]:
    """Return the facts and charges of a LawBench-shaped record (`question` and `answer`)."""
    question = _require_text(record["question"], "question")
    fact = _LAWBENCH_FACT.sub("", question, count=1)
    if "answer" not in record:
        raise BadRecord('field `answer` is missing; expected a string such as "罪名:盗窃;诈骗"')
    answer = _require_text(record["answer"], "answer")
    return fact, _require_charges(_LAWBENCH_SPLIT.split(_LAWBENCH_ANSWER.sub("", answer, count=1)), "answer")


def _require_text(value: Any, field: str) -> str:
    """Return `value` if it is a non-blank string, else raise BadRecord naming `field`."""
    if not isinstance(value, str):
        raise BadRecord(f"field `{field}` must be a string, found {type(value).__name__} {_preview(value)}")
    if not value.strip():
        raise BadRecord(f"field `{field}` is empty; expected the case facts or answer text")
    return value


def _require_charges(names: list[str], field: str) -> list[str]:
    """Normalise charge names; raise BadRecord naming `field` when none is left."""
    charges = [charge for charge in map(normalize_charge, names) if charge]
    if not charges:
        raise BadRecord(f'field `{field}` names no charge, found {_preview(names)}; expected e.g. ["盗窃"]')
    return charges


def _clean_fact(fact: str) -> str:
    """Collapse whitespace, drop the prosecution's opening words (unless that is all) and cut at MAX_FACT_CHARS."""
    text = _WHITESPACE.sub(" ", fact).strip()
    text = _PROSECUTION_LEAD.sub("", text, count=1) or text
    if len(text) <= MAX_FACT_CHARS:
        return text
    head = text[:MAX_FACT_CHARS]
    # Prefer ending on a whole sentence when one ends in the second half of the kept text.
    cut = max(head.rfind(mark) for mark in _SENTENCE_END)
    return head[: cut + 1] if cut >= MAX_FACT_CHARS // 2 else head + "…"


def _preview(value: Any, limit: int = 60) -> str:
    """Show a value in an error message, shortened to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
