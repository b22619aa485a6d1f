"""`pixiu plugins ...`: what is loaded and which hooks each plugin implements."""

from __future__ import annotations

import json

import click


@click.group(name="plugins")
def group() -> None:
    """Inspect pixiu plugins (domains, model sources, commands)."""


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_plugins(as_json: bool) -> None:
    """List loaded plugins with their version and the hooks they implement."""
    from pixiu.plugins import describe_plugins

    rows = describe_plugins()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("plugin", "version", "source", "hooks")
    for row in rows:
        table.add_row(row["name"], row["version"] or "-", row["source"], ", ".join(row["hooks"]))
    Console().print(table)
