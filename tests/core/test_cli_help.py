"""Every `pixiu` command and group, core's and the installed plugins', shows an example in its `--help`."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import click
from click.testing import CliRunner

from pixiu.cli import add_plugin_commands, cli


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The command path of `group` and of every command below it."""
    yield path
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_help_has_an_example(installed_plugins) -> None:
    group = copy.copy(cli)  # the plugins' verbs go on a copy, so the shared `cli` stays core-only for other tests
    group.commands = dict(cli.commands)
    add_plugin_commands(group)
    paths = list(walk(group))
    assert {"zhihu", "medical"} <= {p[0] for p in paths if p}, "the plugins' own commands were not loaded"
    missing = []
    for path in paths:
        result = CliRunner().invoke(group, [*path, "--help"], catch_exceptions=False, terminal_width=200)
        assert result.exit_code == 0, result.output
        lines = [line.strip() for line in result.output.splitlines()]
        heading = next((i for i, line in enumerate(lines) if line.startswith("Examples") and line.endswith(":")), None)
        examples = lines[heading + 1 :] if heading is not None else []
        if not any(line.startswith("pixiu ") for line in examples):
            missing.append(" ".join(("pixiu", *path)))
    assert not missing, f"these commands' --help lacks an 'Examples...:' block with a `pixiu ...` line: {missing}"
