"""Raw medical records (Huatuo instructions, KG-generated instructions, doctor–patient dialogues) -> examples.

Each example carries its reference: the gold answer's text and, for a record built from the knowledge graph,
the facts the answer states (its `facts` triples), which knowledge recall checks. The answer the model
learns is the plain answer; no fact list is appended to it.
"""

from __future__ import annotations

from typing import Any

from pixiu import BadRecord, Example
from pixiu_medical.kg import RELATIONS, TEXT_TYPE
from pixiu_medical.parser import parse_answer

SYSTEM_PROMPT = "你是医学知识助手，回答准确简洁，必要时建议就医。"

_NEWLINES = str.maketrans({"\r": "\n", "\u2028": "\n", "\u3000": " "})
_EMPTY_ASKS = frozenset({"无", "无。", "同上", "如题", "如题。"})
"""What patients of the dialogue data write in `ask` when the title says it all."""
_CRAWLED_FIELDS = frozenset({"symptoms", "causes", "drugs", "departments"})


def format_record(record: dict[str, Any]) -> Example:
    """Turn one medical record into system, user and gold assistant messages, with the reference to score against.

    Accepted shapes:

    * Huatuo / Alpaca instructions: `instruction`, optional `input`, `output` (the records
      `pixiu medical instructions` writes from a knowledge graph have this shape too);
    * doctor–patient dialogue rows (the `department,title,ask,answer` CSV, converted with
      `pixiu medical csv-to-jsonl`): the patient's `ask` (or the `title` when `ask` is empty) and the
      doctor's `answer`.

    Args:
        record: One raw record.

    Returns:
        Three chat messages (the last is the gold answer) and the reference `{"text": answer, "facts":
        terms or None}`; `facts` is None when the record has no structured facts (they are then read from
        the answer text when scoring, see `pixiu_medical.parser.answer_facts`).

    Raises:
        BadRecord: A field is missing or empty, `facts` is malformed, or the record has none of the shapes
            above (a crawled disease page gets a hint to build instructions from it first).
    """
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object per record, found {type(record).__name__}")
    if "instruction" in record or "output" in record:
        question = _text(record, "instruction")
        extra = record.get("input")
        if extra is not None and not isinstance(extra, str):
            raise BadRecord(f"field `input` must be a string (or absent), found {type(extra).__name__}")
        if extra and extra.strip():
            question = f"{question}\n{_clean(extra)}"
        answer = _text(record, "output")
    elif "ask" in record or "answer" in record:
        raw_ask = record.get("ask")
        ask = _clean(raw_ask) if isinstance(raw_ask, str) else ""
        question = ask if ask and ask not in _EMPTY_ASKS else _text(record, "title", hint="`ask` is empty too")
        answer = _text(record, "answer")
    elif "name" in record and _CRAWLED_FIELDS & set(record):
        raise BadRecord(
            "this is a crawled disease page, not a question and answer; build instructions from crawls first: "
            "`pixiu medical kg build RAW.jsonl KG.jsonl` then `pixiu medical instructions KG.jsonl OUT.jsonl`"
        )
    else:
        raise BadRecord(
            "unknown record format: expected Huatuo fields `instruction`/`input`/`output`, or dialogue fields "
            f"`department`/`title`/`ask`/`answer`; found keys {sorted(record)}"
        )
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    return Example(messages, reference={"text": parse_answer(answer), "facts": stated_facts(record) or None})


def stated_facts(record: dict[str, Any]) -> list[str]:
    """The fact terms a record's answer states: the diseases of a reverse question, else the non-text tails.

    Raises:
        BadRecord: `facts` is not a list of [head, relation, tail] strings with a known relation.
    """
    facts = record.get("facts", [])
    if not isinstance(facts, list) or not all(_is_triple(fact) for fact in facts):
        raise BadRecord(
            f"field `facts` must be a list of [head, relation, tail] strings, relation one of {', '.join(RELATIONS)}"
        )
    if record.get("kind") == "reverse":
        terms = [head for head, _, _ in facts]
    else:
        terms = [tail for _, relation, tail in facts if RELATIONS[relation][2] != TEXT_TYPE]
    return list(dict.fromkeys(terms))


def _is_triple(fact: Any) -> bool:
    """Whether `fact` is [head, relation, tail] strings with a known relation."""
    return (
        isinstance(fact, list | tuple)
        and len(fact) == 3
        and all(isinstance(part, str) for part in fact)
        and fact[1] in RELATIONS
    )


def _text(record: dict[str, Any], field: str, hint: str = "") -> str:
    """The cleaned, non-empty string in `field`, else BadRecord naming the field."""
    value = record.get(field)
    if value is None:
        raise BadRecord(f"field `{field}` is missing" + (f" ({hint})" if hint else ""))
    if not isinstance(value, str):
        raise BadRecord(f"field `{field}` must be a string, found {type(value).__name__}")
    text = _clean(value)
    if not text:
        raise BadRecord(f"field `{field}` is empty" + (f" ({hint})" if hint else ""))
    return text


def _clean(text: str) -> str:
    """Unify line breaks and ideographic spaces, strip each line, drop blank lines."""
    lines = (line.strip() for line in text.translate(_NEWLINES).split("\n"))
    return "\n".join(line for line in lines if line)
