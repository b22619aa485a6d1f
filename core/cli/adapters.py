"""`pixiu adapters ...`: the registry of trained adapters."""

from __future__ import annotations

import json
from dataclasses import asdict

import click


@click.group(name="adapters")
def group() -> None:
    """Inspect trained adapters (newest of a name wins; older ones are kept)."""


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_adapters_command(as_json: bool) -> None:
    """List registered adapters, newest first."""
    from pixiu.registry import list_adapters

    entries = list_adapters()
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
        return
    if not entries:
        click.echo("No adapters yet: train one with `pixiu domain train DOMAIN`.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "created", "base", "path")
    for entry in entries:
        table.add_row(entry.name, entry.created[:19], entry.base, entry.path)
    Console().print(table)
