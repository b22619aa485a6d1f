"""Record formats any domain, or a plain general-chat run, trains on: Alpaca, ShareGPT / Vicuna and OpenAI chat
rows, and the preference-pair forms of TRL and LLaMA-Factory; chosen by `data.format` or detected row by row.

Each reader turns one record into chat messages (or a preference row in TRL's prompt/chosen/rejected form) and
raises `BadRecord` saying what is wrong with it; pixiu's record reader adds the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord
from pixiu.formats import alpaca, messages, sharegpt
from pixiu.formats.turns import check_conversation, parse_turns

FORMATS: dict[str, tuple[Callable[[dict[str, Any]], Messages], tuple[str, ...]]] = {
    "alpaca": (alpaca.to_messages, alpaca.KEYS),
    "sharegpt": (sharegpt.to_messages, sharegpt.KEYS),
    "messages": (messages.to_messages, messages.KEYS),
}
"""Each format's reader and the fields that identify it, in the order detection tries them."""

DATA_FORMATS = ("domain", "auto", *FORMATS)
"""The values of `data.format`: the domain's own formatter, detection row by row, or one format."""

PAIR_READERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "alpaca": alpaca.to_pair,
    "sharegpt": sharegpt.to_pair,
    "messages": messages.to_pair,
}
"""Each format's reader of preference rows (LLaMA-Factory's ranking forms), as TRL rows."""

PAIR_FORMS = (
    "trl (prompt, chosen, rejected)",
    "trl implicit prompt (chosen, rejected: whole conversations)",
    "alpaca (instruction, chosen, rejected)",
    "sharegpt (conversations, chosen, rejected)",
    "messages (messages, chosen, rejected)",
)
"""The preference forms pixiu reads, as error messages list them."""


def record_formatter(data_format: str) -> Callable[[dict[str, Any]], Messages]:
    """The formatter of `data.format`: "auto" detects each row's format, a format name reads only that format."""
    if data_format == "auto":
        return to_messages
    return partial(_read_as, data_format)


def to_messages(record: dict[str, Any]) -> Messages:
    """A row of any format as chat messages ending with the answer, its format detected by its fields."""
    return FORMATS[detect_format(record)][0](record)


def detect_format(record: dict[str, Any]) -> str:
    """The format whose fields the row has: instruction (alpaca), conversations (sharegpt) or messages.

    Raises:
        BadRecord: The row is a preference pair, or has the fields of no format (the error lists those it has).
    """
    if _is_pair(record):
        raise BadRecord("this row is a preference pair (chosen, rejected); train on pairs with --method dpo, rm or kto")
    for name, (_, keys) in FORMATS.items():
        if all(key in record for key in keys):
            return name
    tried = "; ".join(f"{name} ({', '.join(keys)})" for name, (_, keys) in FORMATS.items())
    raise BadRecord(f"the row fits no format: tried {tried}; the row's fields are {_fields(record)}")


def pair_row(record: dict[str, Any], data_format: str = "auto") -> dict[str, Any]:
    """A preference row of any pair form as a TRL row (prompt, chosen, rejected); with a format name, that format's
    ranking rows and TRL rows only.

    Raises:
        BadRecord: The row is no pair form pixiu reads (the error lists the forms tried and the row's fields), or
            not of `data_format`, or a bad row of its form.
    """
    if "prompt" in record:
        return record
    form = next((name for name, (_, keys) in FORMATS.items() if all(key in record for key in keys)), None)
    if form is None:
        if isinstance(record.get("chosen"), list) and isinstance(record.get("rejected"), list):
            return _implicit_prompt(record)
        raise BadRecord(
            f"the row is no preference pair pixiu reads: tried {'; '.join(PAIR_FORMS)}; the row's fields are "
            f"{_fields(record)}"
        )
    if data_format in FORMATS and form != data_format:
        raise BadRecord(f"data.format is {data_format}, but this row is a {form} pair; set data.format=auto to mix")
    return PAIR_READERS[form](record)


def _read_as(data_format: str, record: dict[str, Any]) -> Messages:
    """Read a row as `data_format`, saying which fields it lacks and which it has when it is not of that format."""
    reader, keys = FORMATS[data_format]
    missing = [key for key in keys if key not in record]
    if missing or _is_pair(record):
        problem = f"lacks {', '.join(missing)}" if missing else "is a preference pair (chosen, rejected)"
        raise BadRecord(
            f"data.format is {data_format}, whose rows hold {', '.join(keys)}, but this row {problem}; its fields "
            f"are {_fields(record)} (data.format=auto detects each row's format)"
        )
    return reader(record)


def _implicit_prompt(record: dict[str, Any]) -> dict[str, Any]:
    """TRL's implicit-prompt pair (chosen and rejected are whole conversations that differ only in their last,
    assistant, message) as a TRL row with the shared turns as its prompt."""
    chosen, rejected = (
        check_conversation(parse_turns(record[side], side, messages.read_message), side)
        for side in ("chosen", "rejected")
    )
    if chosen[:-1] != rejected[:-1]:
        raise BadRecord("chosen and rejected differ before their last message; they must share the prompt's turns")
    return {"prompt": chosen[:-1], "chosen": chosen[-1]["content"], "rejected": rejected[-1]["content"]}


def _is_pair(record: dict[str, Any]) -> bool:
    """Whether the row holds two answers to compare."""
    return "chosen" in record and "rejected" in record


def _fields(record: dict[str, Any]) -> str:
    """The row's field names, for error messages."""
    return ", ".join(sorted(map(str, record))) or "none"
