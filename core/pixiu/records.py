"""Read raw records (JSONL, or a JSON list) and turn them into chat examples through a domain's formatter.

Nothing is dropped silently: a bad record either stops the run with its file and line, or (policy "skip")
is written to a rejects file with the reason, and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixiu.domain import Messages
from pixiu.errors import BadRecord, DataError


@dataclass(frozen=True)
class Example:
    """One formatted record and where it came from."""

    where: str
    """`file:line` (JSONL) or `file[index]` (JSON list), for error messages."""
    messages: Messages


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
    if not path.is_file():
        raise DataError(f"data file not found: {path}. Pass an existing .jsonl or .json file with --data.")
    if path.suffix == ".json":
        yield from _iter_json_list(path)
        return
    with path.open("rb") as handle:
        for number, raw_line in enumerate(handle, start=1):
            where = f"{path}:{number}"
            try:
                line = raw_line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield where, raw_line.decode("utf-8", errors="replace").rstrip("\r\n"), BadRecord(_not_utf8(exc))
                continue
            if not line.strip():
                continue
            try:
                yield where, line.rstrip("\n"), json.loads(line)
            except json.JSONDecodeError as exc:
                yield where, line.rstrip("\n"), BadRecord(f"not valid JSON ({exc.msg} at column {exc.colno})")


def _not_utf8(exc: UnicodeDecodeError) -> str:
    """Say which byte is not UTF-8 and how to convert a file saved in another encoding (often GBK)."""
    return (f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at column {exc.start + 1}); pixiu reads data as "
            "UTF-8: convert the file, e.g. `iconv -f GBK -t UTF-8 in.jsonl > out.jsonl` for GBK")


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
        raise DataError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                        "a .json file must hold one list") from exc
    if not isinstance(items, list):
        raise DataError(f"{path}: a .json data file must hold a list of records, found {type(items).__name__}")
    for index, item in enumerate(items):
        yield f"{path}[{index}]", json.dumps(item, ensure_ascii=False), item


def load_examples(
    path: Path,
    formatter: Callable[[dict[str, Any]], Messages],
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
                messages = _format_one(record, formatter)
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
            result.examples.append(Example(where, messages))
    finally:
        if rejects is not None:
            rejects.close()
    if not result.examples:
        extra = f" ({result.rejected} rejected, see {rejects_path})" if result.rejected else ""
        raise DataError(f"{path}: no usable records{extra}. Check the file is this domain's format.")
    return result


def _format_one(record: Any, formatter: Callable[[dict[str, Any]], Messages]) -> Messages:
    """Run the formatter on one decoded record and check it returned well-formed chat messages."""
    if isinstance(record, BadRecord):
        raise record
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, found {type(record).__name__}")
    messages = formatter(record)
    if not messages or messages[-1].get("role") != "assistant":
        raise BadRecord("the formatter must return chat messages ending with the assistant's answer")
    return messages
