"""How list commands print: one JSON document with --json, otherwise a table for people."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def print_rows(rows: list[dict[str, Any]], columns: Sequence[str], *, as_json: bool, empty: str) -> None:
    """Print `rows` as JSON, or as a table of `columns` (lists are comma-joined), or `empty` when none."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(empty)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    """Render one table cell."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)
