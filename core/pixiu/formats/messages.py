"""OpenAI chat rows (the fine-tuning API's JSONL, TRL's conversational form): `messages` of {role, content}.

    {"messages": [{"role": "system", "content": "…"}, {"role": "user", "content": "…"},
                  {"role": "assistant", "content": "…"}, …]}

Roles are system (or developer, OpenAI's newer name for it), user and assistant; `content` is text or a list
of text parts ({"type": "text", "text": "…"}). Tool and function turns are refused. A preference row ends
`messages` with the user's turn and adds `chosen` and `rejected` answers, each an assistant message or text.
"""

from __future__ import annotations

from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord
from pixiu.formats.sharegpt import answer
from pixiu.formats.turns import TOOL_ROLES, check_conversation, message, parse_turns, tool_turn

KEYS = ("messages",)
"""The fields an OpenAI chat row must have."""

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
"""OpenAI's message roles and the chat role each one is."""


def to_messages(record: dict[str, Any]) -> Messages:
    """An OpenAI chat row as chat messages ending with the assistant's last message; every assistant turn is learned."""
    return check_conversation(parse_turns(record.get("messages"), "messages", read_message), "messages")


def to_pair(record: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat preference row (messages up to the user's turn, chosen, rejected) as a TRL row."""
    turns = parse_turns(record.get("messages"), "messages", read_message)
    prompt = check_conversation(turns, "messages", ends_with="user")
    return {"prompt": prompt, "chosen": answer(record, "chosen"), "rejected": answer(record, "rejected")}


def read_message(turn: Any, where: str) -> dict[str, str]:
    """One {role, content} message as a chat message, its content joined from text parts when it is a list."""
    if not isinstance(turn, dict):
        raise BadRecord(f'{where} must be a {{"role": …, "content": …}} object, not a {type(turn).__name__}')
    role = turn.get("role")
    if role in TOOL_ROLES or turn.get("tool_calls") or turn.get("function_call"):
        raise tool_turn(str(role), where)
    if role not in ROLES:
        raise BadRecord(f"{where} has an unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return message(ROLES[role], _text(turn.get("content"), where), where)


def _text(content: Any, where: str) -> Any:
    """Message content as text: a list of {"type": "text", "text": …} parts is joined; other content is left for
    `message` to refuse."""
    if not isinstance(content, list):
        return content
    parts = []
    for index, part in enumerate(content):
        if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise BadRecord(f"{where}.content[{index}] is a {kind!r} part; only text parts are supported")
        parts.append(part["text"])
    return "".join(parts)
