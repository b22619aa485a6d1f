"""One raw record -> chat messages: the only place that knows this domain's record layout."""

from __future__ import annotations

from typing import Any

from pixiu import BadRecord, Preference

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


def preference_pairs(record: dict[str, Any]) -> list[Preference]:
    """A record with a `worse_answer` -> one preference pair (the answer over it), for `--method dpo`; else none.

    Delete this function (and `preference_formatter=` in plugin.py) if your data has no preferences. Rows
    already in TRL's prompt/chosen/rejected form need no preference formatter at all.
    """
    worse = record.get("worse_answer")
    if worse is None:
        return []
    messages = format_record(record)
    if not isinstance(worse, str) or not worse.strip():
        raise BadRecord("'worse_answer', when given, must be a non-empty string")
    return [Preference(messages[:-1], chosen=messages[-1]["content"], rejected=worse.strip())]
