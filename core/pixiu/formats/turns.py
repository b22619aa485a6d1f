"""Checks every record format shares: a conversation's turns, their roles, their order and their text."""

from __future__ import annotations

from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord

TOOL_ROLES = frozenset({"tool", "function", "function_call", "observation", "ipython"})
"""Roles of tool and function-calling turns, which pixiu does not train on."""


def text_field(record: dict[str, Any], key: str, *, required: bool = True) -> str:
    """`record[key]` as text: missing or blank is an error when `required`, "" otherwise; a non-string always is."""
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"'{key}' is missing" if key not in record else f"'{key}' must be text, not {value!r:.40}")
    if required and not value.strip():
        raise BadRecord(f"'{key}' is empty")
    return value


def with_system(system: str, messages: Messages, where: str) -> Messages:
    """`messages` after a system message holding `system` (none when it is ""); refused when they have one already."""
    if not system:
        return messages
    if messages and messages[0]["role"] == "system":
        raise BadRecord(f"both a top-level 'system' and a system turn in {where}; keep one of them")
    return [{"role": "system", "content": system}, *messages]


def check_conversation(messages: Messages, where: str, *, ends_with: str = "assistant") -> Messages:
    """`messages` once they are a conversation pixiu can train on, else `BadRecord` naming the turn at fault.

    An optional system message comes first; then user and assistant turns alternate, starting with the user and
    ending with `ends_with` ("assistant" for a training example, "user" for the prompt of a preference pair);
    no turn is blank. `where` names the list in messages, e.g. "conversations".
    """
    start = 1 if messages and messages[0]["role"] == "system" else 0
    for index, message in enumerate(messages):
        role = message["role"]
        if not message["content"].strip():
            raise BadRecord(f"{where}[{index}] ({role}) is empty")
        if role == "system" and index > 0:
            raise BadRecord(f"{where}[{index}] is a system turn; a system message may only come first")
        expected = "user" if (index - start) % 2 == 0 else "assistant"
        if index == start and role != "user":
            raise BadRecord(
                f"{where}[{index}] is {role}; a conversation starts with the user's turn (after an "
                "optional system message)"
            )
        if index > start and role != expected:
            raise BadRecord(
                f"{where}[{index}] is {role} after {messages[index - 1]['role']}; user and assistant turns must "
                "alternate"
            )
    if len(messages) == start:
        raise BadRecord(f"{where} holds no user or assistant turn")
    if messages[-1]["role"] != ends_with:
        if ends_with == "assistant":
            raise BadRecord(f"{where} ends with a {messages[-1]['role']} turn: no final assistant answer to learn")
        raise BadRecord(f"{where} ends with an assistant turn; the prompt of a pair ends with the user's turn")
    return messages


def parse_turns(turns: Any, where: str, read: Any) -> Messages:
    """`turns` (a list) as chat messages, each read by `read(turn, "where[i]")`; `BadRecord` for one that is not."""
    if not isinstance(turns, list):
        raise BadRecord(f"'{where}' must be a list of turns, not a {type(turns).__name__}")
    return [read(turn, f"{where}[{index}]") for index, turn in enumerate(turns)]


def message(role: str, content: Any, where: str) -> dict[str, str]:
    """A chat message of `role` whose `content` must be text."""
    if not isinstance(content, str):
        found = "missing" if content is None else f"a {type(content).__name__}"
        raise BadRecord(f"{where} has no text ({found})")
    return {"role": role, "content": content}


def tool_turn(role: str, where: str) -> BadRecord:
    """The error for a tool or function-calling turn."""
    return BadRecord(
        f"{where} is a {role!r} turn: tool and function calls are not supported; leave such turns (or the record) out"
    )
