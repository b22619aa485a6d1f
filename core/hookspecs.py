"""Every hook a pixiu plugin can implement. Call hooks with keyword arguments only.

Hooks only ever gain arguments; an implementation may accept a subset of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from pixiu.domain import Domain, ModelSource

hookspec = pluggy.HookspecMarker("pixiu")


@hookspec
def register_domains(register: Callable[[Domain], None]) -> None:
    """Called once when pixiu collects domains; call `register(Domain(...))` for each vertical you provide.

    Two plugins registering the same domain name is an error naming both. Return nothing.
    """


@hookspec
def register_model_sources(register: Callable[[ModelSource], None]) -> None:
    """Called once when a `--base` with a `scheme:` prefix is resolved; call `register(ModelSource(...))`.

    A scheme registered twice is an error. Return nothing.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Called once when the `pixiu` command line is built; add new verbs with `@cli.command()`.

    Do not replace pixiu's own commands. Return nothing.
    """
