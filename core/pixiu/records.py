"""Read raw records (JSONL, or a JSON list) and turn them into chat examples through a domain's formatter.

Nothing is dropped silently: a bad record either stops the run with its file and line, or (policy "skip")
is written to a rejects file with the reason, and counted.
"""

from __future__ import annotations

import codecs
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, NoReturn, TypeVar

from pixiu.domain import Example, Messages
from pixiu.errors import BadRecord, DataError

Formatter = Callable[[dict[str, Any]], Messages | Example]
"""A domain's formatter: one raw record -> chat messages, or an `Example` carrying its own reference."""

MAX_RECORD_CHARS = 4_000_000
"""Longest JSONL record read, in characters, unless PIXIU_MAX_RECORD_CHARS says otherwise: decoding a record
takes many times its size in memory, so a huge one is refused instead of exhausting it."""


T = TypeVar("T")


@dataclass
class Loaded(Generic[T]):
    """Items that records converted into cleanly, and how many records were rejected."""

    items: list[T] = field(default_factory=list)
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
    too_long = _too_long(limit)
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


def _too_long(limit: int) -> str:
    """Why a record over the bound is refused, and how to raise the bound."""
    return (
        f"record longer than {limit:,} characters, pixiu's bound on one record; split it, "
        "or raise the bound with PIXIU_MAX_RECORD_CHARS=N"
    )


def _not_utf8(exc: UnicodeDecodeError) -> str:
    """Say which byte is not UTF-8 and how to convert a file saved in another encoding (often GBK)."""
    return (
        f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1}); pixiu reads data as "
        "UTF-8: convert the file, e.g. `iconv -f GBK -t UTF-8 in.jsonl > out.jsonl` for GBK"
    )


def _iter_json_list(path: Path) -> Iterator[tuple[str, str, Any]]:
    """Yield the items of a file holding one JSON list, streamed: the file is never held whole, nor any item
    longer than the record bound (PIXIU_MAX_RECORD_CHARS)."""
    reader = _JsonListReader(path, _record_limit())
    reader.expect("[", "a .json data file must hold one list of records; expected [")
    if reader.peek() == "]":
        reader.take(1)
    else:
        for index in itertools.count():
            item = reader.value()
            yield f"{path}[{index}]", json.dumps(item, ensure_ascii=False), item
            separator = reader.peek()
            if separator == "]":
                reader.take(1)
                break
            reader.expect(",", f"expected , or ] after record {index}")
    if reader.peek() != "":
        reader.fail("text after the end of the list; a .json data file must hold exactly one list")


class _JsonListReader:
    """A JSON text read in chunks, decoded one value at a time, with exact line and column for every error."""

    CHUNK = 1 << 20

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit = path, limit
        self._stream = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._json = json.JSONDecoder()
        self._buffer, self._line, self._column = "", 1, 0  # line and column where the buffer starts
        self._ended = False

    def _more(self) -> bool:
        """Read the next chunk into the buffer; False at the end of the file."""
        if self._ended:
            return False
        data = self._stream.read(self.CHUNK)
        try:
            self._buffer += self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            self._buffer += data[: exc.start].decode("utf-8", errors="replace")
            line = self._line + self._buffer.count("\n")
            raise DataError(f"{self.path}:{line}: {_not_utf8(exc)}") from exc
        if not data:
            self._ended = True
            self._stream.close()
        return True

    def take(self, count: int) -> None:
        """Drop the first `count` characters of the buffer, keeping track of the line and column."""
        dropped, self._buffer = self._buffer[:count], self._buffer[count:]
        newlines = dropped.count("\n")
        self._line += newlines
        self._column = len(dropped) - dropped.rfind("\n") - 1 if newlines else self._column + len(dropped)

    def peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file), whitespace dropped."""
        while True:
            stripped = self._buffer.lstrip(" \t\r\n")
            self.take(len(self._buffer) - len(stripped))
            if self._buffer or not self._more():
                return self._buffer[:1]

    def expect(self, char: str, what: str) -> None:
        """Consume `char` as the next non-whitespace character, or fail saying `what` was expected."""
        if self.peek() != char:
            self.fail(what)
        self.take(1)

    def value(self) -> Any:
        """Decode the next JSON value; it is complete once a character follows it (or the file ends)."""
        self.peek()
        while True:
            try:
                item, end = self._json.raw_decode(self._buffer)
                if self._buffer[end:].strip() or self._ended:
                    self.take(end)
                    return item
            except json.JSONDecodeError as exc:
                if self._ended:
                    self._fail_at(exc.lineno, exc.colno, exc.msg)
            if len(self._buffer) > self.limit:
                raise DataError(f"{self.path}:{self._line}: {_too_long(self.limit)}")
            self._more()

    def fail(self, what: str) -> NoReturn:
        """Raise a DataError for the current position."""
        self._fail_at(1, 1, what)

    def _fail_at(self, line: int, column: int, what: str) -> NoReturn:
        """Raise a DataError at `line`/`column` counted from the start of the buffer."""
        absolute_column = column + self._column if line == 1 else column
        raise DataError(f"{self.path}:{self._line + line - 1}: not valid JSON ({what} at column {absolute_column})")


def load_records(
    path: Path,
    convert: Callable[[Any], list[T]],
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
    what: str = "records",
) -> Loaded[T]:
    """Convert every record of `path` into items (dataclasses with a `where` field, which is filled in here).

    `convert` raises `BadRecord` for an unusable record: the load stops there with the record's file and line,
    or with "skip" the record goes to `rejects_path` with the reason and is counted.
    """
    result: Loaded[T] = Loaded()
    rejects = None
    try:
        for where, raw, record in iter_raw_records(path):
            try:
                if isinstance(record, BadRecord):
                    raise record
                items = convert(record)
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
            result.items.extend(replace(item, where=where) for item in items)  # type: ignore[type-var]
    finally:
        if rejects is not None:
            rejects.close()
    if not result.items:
        extra = f" ({result.rejected} rejected, see {rejects_path})" if result.rejected else ""
        raise DataError(f"{path}: no usable {what}{extra}. Check the file is this domain's format.")
    return result


def load_examples(
    path: Path,
    formatter: Formatter,
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
) -> Loaded[Example]:
    """Format every record of `path`; stop at the first bad one, or with "skip" write it to `rejects_path`."""
    return load_records(
        path, lambda record: [_format_one(record, formatter)], on_bad_record=on_bad_record, rejects_path=rejects_path
    )


def _format_one(record: Any, formatter: Formatter) -> Example:
    """Run the formatter on one decoded record and check it returned well-formed chat messages."""
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
