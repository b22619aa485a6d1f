"""ShareGPT / Vicuna rows (LLaMA-Factory's sharegpt format): multi-turn `conversations` of {from, value} turns.

    {"system": "…", "conversations": [{"from": "human", "value": "…"}, {"from": "gpt", "value": "…"}, …]}

`from` names the speaker: human or user; gpt, assistant, chatgpt, bing, bard, claude or model; system (first
only). Turns written as {role, content} are read too. The optional top-level `system` is the system prompt. A
preference row ends `conversations` with the user's turn and adds `chosen` and `rejected` answers, each a turn
({"from": "gpt", "value": "…"}) or text.
"""

from __future__ import annotations

from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord
from pixiu.formats.turns import TOOL_ROLES, check_conversation, message, parse_turns, text_field, tool_turn, with_system

KEYS = ("conversations",)
"""The fields a ShareGPT row must have."""

SPEAKERS = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "claude": "assistant",
    "model": "assistant",
    "system": "system",
}
"""ShareGPT's `from` values (as the public ShareGPT, Vicuna, OpenHermes and LLaMA-Factory sets write them)
and the chat role each one is."""


def to_messages(record: dict[str, Any]) -> Messages:
    """A ShareGPT row as chat messages ending with the assistant's last turn; every assistant turn is learned."""
    return check_conversation(_conversation(record), "conversations")


def to_pair(record: dict[str, Any]) -> dict[str, Any]:
    """A ShareGPT preference row (conversations up to the user's turn, chosen, rejected) as a TRL row."""
    prompt = check_conversation(_conversation(record), "conversations", ends_with="user")
    return {"prompt": prompt, "chosen": answer(record, "chosen"), "rejected": answer(record, "rejected")}


def answer(record: dict[str, Any], side: str) -> str:
    """The `chosen` or `rejected` answer of a preference row: an assistant turn ({from, value} or {role, content})
    or plain text."""
    value = record.get(side)
    if isinstance(value, dict):
        turn = read_turn(value, side)
        if turn["role"] != "assistant":
            raise BadRecord(f"'{side}' is a {turn['role']} turn; it must be the assistant's answer")
        return turn["content"]
    return text_field(record, side)


def read_turn(turn: Any, where: str) -> dict[str, str]:
    """One {from, value} (or {role, content}) turn as a chat message."""
    if not isinstance(turn, dict):
        raise BadRecord(f'{where} must be a {{"from": …, "value": …}} object, not a {type(turn).__name__}')
    speaker, text = (turn.get("from"), turn.get("value")) if "from" in turn else (turn.get("role"), turn.get("content"))
    if speaker in TOOL_ROLES:
        raise tool_turn(str(speaker), where)
    if speaker not in SPEAKERS:
        raise BadRecord(f"{where} has an unknown 'from' value {speaker!r}; expected one of {', '.join(SPEAKERS)}")
    return message(SPEAKERS[speaker], text, where)


def _conversation(record: dict[str, Any]) -> Messages:
    """The row's turns as chat messages, after the top-level system prompt when there is one."""
    turns = parse_turns(record.get("conversations"), "conversations", read_turn)
    return with_system(text_field(record, "system", required=False), turns, "conversations")
