"""`pixiu plugins ...`: what is loaded and which hooks each plugin implements."""

from __future__ import annotations

import click

from pixiu.cli.output import print_rows


@click.group(name="plugins")
def group() -> None:
    """Inspect pixiu plugins (domains, model sources, commands)."""


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_plugins(as_json: bool) -> None:
    """List plugins with their version, the hooks they implement, and any that failed to load."""
    from pixiu.plugins import describe_plugins

    columns = ["name", "version", "source", "hooks", "status"]
    print_rows(describe_plugins(), columns, as_json=as_json, empty="No plugins loaded.")
