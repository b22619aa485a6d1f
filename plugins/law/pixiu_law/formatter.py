"""Raw law records (CAIL2018 JSONL, LawBench JSON, crawled cases) -> examples for charge prediction."""

from __future__ import annotations

import re
from typing import Any

from pixiu import BadRecord, Example
from pixiu_law.charges import normalize_charge

SYSTEM_PROMPT = "你是刑事法律助手，根据案情判断罪名。"
QUESTION = "被告人犯了什么罪？"
ANSWER_PREFIX = "罪名："
ANSWER_SEPARATOR = "；"
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


def format_record(record: dict[str, Any]) -> Example:
    """Turn one law record into system, user and gold assistant messages, with the record's charges as reference.

    Accepted shapes: CAIL2018 (`fact`, `meta.accusation` list; crawled cases use the same) and
    LawBench (`question` "事实:…", `answer` "罪名:A;B"). The answer is `罪名：A；B` with charges
    normalised, de-duplicated and sorted by code point, so one charge set always reads the same.

    Args:
        record: One raw record.

    Returns:
        Three chat messages (the last is the gold answer) and the reference: the record's charges, a sorted list.

    Raises:
        BadRecord: The record has no usable facts or charges, or is of an unknown shape.
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
    fact = _clean_fact(fact)
    charges = sorted(set(charges))
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"{fact}\n{QUESTION}"},
        {"role": "assistant", "content": ANSWER_PREFIX + ANSWER_SEPARATOR.join(charges)},
    ]
    return Example(messages, reference=charges)


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
