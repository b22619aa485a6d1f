"""Read raw records (JSONL, or a JSON list) and turn them into chat examples through a domain's formatter.

Nothing is dropped silently: a bad record either stops the run with its file and line, or (policy "skip")
is written to a rejects file with the reason, and counted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pixiu.domain import Example, Messages
from pixiu.errors import BadRecord, DataError

Formatter = Callable[[dict[str, Any]], Messages | Example]
"""A domain's formatter: one raw record -> chat messages, or an `Example` carrying its own reference."""

MAX_RECORD_CHARS = 4_000_000
"""Longest JSONL record read, in characters, unless PIXIU_MAX_RECORD_CHARS says otherwise: decoding a record
takes many times its size in memory, so a huge one is refused instead of exhausting it."""


@dataclass
class LoadResult:
    """Examples that formatted cleanly, and how many records were rejected."""

    examples: list[Example] = field(default_factory=list)
    rejected: int = 0


def iter_raw_records(path: Path) -> Iterator[tuple[str, str, Any]]:
    """Yield `(where, raw_text, parsed_or_error)` for every record in a `.jsonl` or `.json` file.

    `parsed_or_error` is the decoded value, or a `BadRecord` describing why the text is not valid JSON.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder; pass one .jsonl or .json file with --data, e.g. {path / 'train.jsonl'}")
    if not path.is_file():
        raise DataError(f"data file not found: {path}. Pass an existing .jsonl or .json file with --data.")
    if path.suffix == ".json":
        yield from _iter_json_list(path)
        return
    limit = _record_limit()
    too_long = (
        f"record longer than {limit:,} characters, pixiu's bound on one record; split it, "
        "or raise the bound with PIXIU_MAX_RECORD_CHARS=N"
    )
    with path.open("rb") as handle:
        # read no further than the bound (4 bytes at most per UTF-8 character): the line is never held whole
        for number, raw_line in enumerate(iter(lambda: handle.readline(4 * limit + 1), b""), start=1):
            where = f"{path}:{number}"
            if len(raw_line.rstrip(b"\r\n")) > 4 * limit:
                raise DataError(f"{where}: {too_long}")
            try:
                line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield where, raw_line.decode("utf-8", errors="replace").rstrip("\r\n"), BadRecord(_not_utf8(exc))
                continue
            if len(line.rstrip("\r\n")) > limit:
                raise DataError(f"{where}: {too_long}")
            if not line.strip():
                continue
            try:
                yield where, line.rstrip("\n"), json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, line.rstrip("\n"), BadRecord(f"not valid JSON ({exc.msg} at column {exc.colno})")


def _record_limit() -> int:
    """The bound on one JSONL record's length: PIXIU_MAX_RECORD_CHARS, else `MAX_RECORD_CHARS`."""
    text = os.environ.get("PIXIU_MAX_RECORD_CHARS") or str(MAX_RECORD_CHARS)
    if not text.isdigit() or int(text) == 0:
        raise DataError(f"PIXIU_MAX_RECORD_CHARS={text!r}: expected a positive number of characters, e.g. 8000000")
    return int(text)


def _not_utf8(exc: UnicodeDecodeError) -> str:
    """Say which byte is not UTF-8 and how to convert a file saved in another encoding (often GBK)."""
    return (
        f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1}); pixiu reads data as "
        "UTF-8: convert the file, e.g. `iconv -f GBK -t UTF-8 in.jsonl > out.jsonl` for GBK"
    )


def _iter_json_list(path: Path) -> Iterator[tuple[str, str, Any]]:
    """Yield the items of a file holding one JSON list."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: {_not_utf8(exc)}") from exc
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); a .json file must hold one list"
        ) from exc
    if not isinstance(items, list):
        raise DataError(f"{path}: a .json data file must hold a list of records, found {type(items).__name__}")
    for index, item in enumerate(items):
        yield f"{path}[{index}]", json.dumps(item, ensure_ascii=False), item


def load_examples(
    path: Path,
    formatter: Formatter,
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
) -> LoadResult:
    """Format every record of `path`; stop at the first bad one, or with "skip" write it to `rejects_path`."""
    result = LoadResult()
    rejects = None
    try:
        for where, raw, record in iter_raw_records(path):
            try:
                example = _format_one(record, formatter)
            except BadRecord as exc:
                if on_bad_record != "skip":
                    raise DataError(f"{where}: {exc}. Fix the record, or pass --on-bad-record skip.") from exc
                if rejects is None:
                    if rejects_path is None:
                        raise DataError(f"{where}: {exc} (and no rejects file was given)") from exc
                    rejects_path.parent.mkdir(parents=True, exist_ok=True)
                    rejects = rejects_path.open("a", encoding="utf-8")
                rejects.write(json.dumps({"where": where, "reason": str(exc), "raw": raw}, ensure_ascii=False) + "\n")
                result.rejected += 1
                continue
            result.examples.append(replace(example, where=where))
    finally:
        if rejects is not None:
            rejects.close()
    if not result.examples:
        extra = f" ({result.rejected} rejected, see {rejects_path})" if result.rejected else ""
        raise DataError(f"{path}: no usable records{extra}. Check the file is this domain's format.")
    return result


def _format_one(record: Any, formatter: Formatter) -> Example:
    """Run the formatter on one decoded record and check it returned well-formed chat messages."""
    if isinstance(record, BadRecord):
        raise record
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, found {type(record).__name__}")
    return as_example(formatter(record))


def as_example(formatted: Messages | Example) -> Example:
    """A formatter's output as an `Example`, checked to end with the assistant's answer.

    Raises:
        BadRecord: The messages are empty, are not role/content dicts, or do not end with an assistant answer.
    """
    example = formatted if isinstance(formatted, Example) else Example(messages=formatted)
    messages = example.messages
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise BadRecord("the formatter must return a non-empty list of chat messages (or a pixiu.Example)")
    if messages[-1].get("role") != "assistant" or not isinstance(messages[-1].get("content"), str):
        raise BadRecord("the formatter must return chat messages ending with the assistant's answer")
    return example
