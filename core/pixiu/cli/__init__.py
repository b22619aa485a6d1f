"""The `pixiu` command line: core owns the verbs, domains are arguments, plugins may add verbs."""

from __future__ import annotations

import click

from pixiu import __version__
from pixiu.errors import PixiuError
from pixiu.host_memory import tune_host_allocator

tune_host_allocator()  # before the commands below import torch, which reads the allocator settings once


class _FriendlyGroup(click.Group):
    """A click group that prints `PixiuError`s as one clear message instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PixiuError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pixiu")
def cli() -> None:
    """pixiu turns a general chat LLM into domain experts.

    \b
    Examples:
      pixiu domain list                 # the verticals installed
      pixiu domain train law            # LoRA-train the law domain on its sample data
      pixiu domain eval law --adapter law
      pixiu adapters list               # every trained adapter

    State (converted models, runs, the adapter registry) lives in PIXIU_HOME (default ~/.pixiu).
    """


def _add_core_commands(group: click.Group) -> None:
    """Attach pixiu's own command groups."""
    from pixiu.cli import adapters, data, domain, models, plugins, serve

    for module in (domain, plugins, adapters, models, data):
        group.add_command(module.group)
    for command in serve.commands:
        group.add_command(command)


_add_core_commands(cli)


def add_plugin_commands(group: click.Group) -> None:
    """Let every plugin add its own verbs to `group` (the `register_commands` hook); a failing plugin is skipped.

    The verbs already in `group` are pixiu's own: a plugin that tries to replace one is refused by name
    (reported as failing in register_commands), and the core command stays.
    """
    from pixiu.plugins import call_hook

    core = dict(group.commands)
    original = group.add_command

    def add_command(cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name in core:
            raise PixiuError(
                f"command {name!r} is pixiu's own and cannot be replaced by a plugin; "
                f"give the plugin's command another name"
            )
        original(cmd, name)

    group.add_command = add_command  # type: ignore[method-assign]  # plugins reach the group only through this call
    try:
        call_hook("register_commands", cli=group)
    finally:
        del group.add_command
        group.commands.update(core)  # also undoes writes straight into group.commands


def main() -> None:
    """Console-script entry point: core commands plus those plugins add."""
    add_plugin_commands(cli)
    cli.main()
