"""`pixiu adapters ...`: the registry of trained adapters."""

from __future__ import annotations

from dataclasses import asdict

import click

from pixiu.cli.output import print_rows


@click.group(name="adapters")
def group() -> None:
    """Inspect trained adapters (newest of a name wins; older ones are kept).

    \b
    Examples:
      pixiu adapters list
      pixiu adapters list --json
    """


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_adapters_command(as_json: bool) -> None:
    """List registered adapters, newest first.

    \b
    Examples:
      pixiu adapters list
      pixiu adapters list --json                      # with each adapter's domain and scores
    """
    from pixiu.registry import list_adapters

    rows = [asdict(entry) for entry in list_adapters()]
    empty = "No adapters yet: train one with `pixiu domain train DOMAIN`."
    print_rows(rows, ["name", "created", "base", "path"], as_json=as_json, empty=empty)
