"""One raw record -> chat messages: the only place that knows this domain's record layout."""

from __future__ import annotations

from typing import Any

from pixiu import BadRecord

SYSTEM_PROMPT = "You are a support assistant. Answer in one short sentence."


def format_record(record: dict[str, Any]) -> list[dict[str, str]]:
    """{"question": ..., "answer": ...} -> system, user and assistant messages; `BadRecord` if a field is missing.

    The gold answer text is then what the metrics compare with (through the parser). When they need more,
    return `pixiu.Example(messages, reference=...)` with a JSON-serialisable reference instead.
    """
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        raise BadRecord("needs a non-empty string 'question'")
    if not isinstance(answer, str) or not answer.strip():
        raise BadRecord("needs a non-empty string 'answer'")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": question.strip()},
        {"role": "assistant", "content": answer.strip()},
    ]
