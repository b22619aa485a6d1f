"""Alpaca rows (Stanford Alpaca, BELLE, LLaMA-Factory's alpaca format): instruction, input, output.

    {"instruction": "…", "input": "…", "output": "…", "system": "…", "history": [["q", "a"], …]}

`input` (the task's context), `system` and `history` (earlier turns, LLaMA-Factory's form) are optional; the
user's turn is the instruction, then the input on a new line, as LLaMA-Factory joins them. A preference row
gives `chosen` and `rejected` instead of `output`.
"""

from __future__ import annotations

from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord
from pixiu.formats.turns import check_conversation, text_field, with_system

KEYS = ("instruction",)
"""The field that makes a row an Alpaca row (`output` is checked by the reader, to say it is missing)."""


def to_messages(record: dict[str, Any]) -> Messages:
    """An Alpaca row as chat messages ending with `output`, the answer."""
    answer = {"role": "assistant", "content": text_field(record, "output")}
    return check_conversation([*prompt(record), answer], "the row")


def to_pair(record: dict[str, Any]) -> dict[str, Any]:
    """An Alpaca preference row (LLaMA-Factory's ranking form: instruction, input, chosen, rejected) as a TRL row."""
    messages = check_conversation(prompt(record), "the row", ends_with="user")
    return {"prompt": messages, "chosen": text_field(record, "chosen"), "rejected": text_field(record, "rejected")}


def prompt(record: dict[str, Any]) -> Messages:
    """The system message, the history's turns and the user's turn (instruction, then input) of an Alpaca row."""
    instruction, context = text_field(record, "instruction"), text_field(record, "input", required=False)
    user = f"{instruction}\n{context}" if context.strip() else instruction
    return with_system(
        text_field(record, "system", required=False), [*_history(record.get("history")), _user(user)], "the row"
    )


def _user(content: str) -> dict[str, str]:
    """A user message."""
    return {"role": "user", "content": content}


def _history(history: Any) -> Messages:
    """LLaMA-Factory's `history`, a list of [question, answer] pairs, as alternating user and assistant turns."""
    if history is None:
        return []
    if not isinstance(history, list):
        raise BadRecord(f"'history' must be a list of [question, answer] pairs, not a {type(history).__name__}")
    messages: Messages = []
    for index, turn in enumerate(history):
        if not (isinstance(turn, list) and len(turn) == 2 and all(isinstance(text, str) for text in turn)):
            raise BadRecord(f"history[{index}] must be a [question, answer] pair of texts, found {turn!r:.80}")
        if not (turn[0].strip() and turn[1].strip()):
            raise BadRecord(f"history[{index}] has an empty {'question' if not turn[0].strip() else 'answer'}")
        messages += [_user(turn[0]), {"role": "assistant", "content": turn[1]}]
    return messages
