"""Broken plugins are reported by name and left out; pixiu and the other plugins keep working.

Each broken plugin here is a real distribution on sys.path (a module plus a `.dist-info` folder with
an entry point in the `pixiu` group), so it goes through the same loading path as a pip-installed one.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from distributions import add_distribution
from pixiu.cli import add_plugin_commands, cli
from pixiu.plugins import HOOK_ERRORS, get_domains, get_plugin_manager
from pixiu.serve.postprocess import process_response

HEADER = "from pixiu import Domain, hookimpl\n"
TOY_DOMAIN = """
def _domain(name):
    return Domain(name=name, description="d", version="0", formatter=lambda r: [], parser=str,
                  metrics=lambda p, r: {})
"""


@pytest.fixture
def distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toy_plugin):
    """Put a one-module distribution with a `pixiu` entry point on sys.path; only it and `toy` are loaded."""
    loaded = [toy_plugin]

    def make(name: str, source: str) -> None:
        module = f"pixiu_test_{name}"
        (tmp_path / f"{module}.py").write_text(HEADER + TOY_DOMAIN + textwrap.dedent(source), encoding="utf-8")
        add_distribution(tmp_path, module, {name: module})
        loaded.append(name)
        monkeypatch.setenv("PIXIU_LOAD_PLUGINS", ",".join(loaded))
        get_plugin_manager.cache_clear()

    monkeypatch.syspath_prepend(str(tmp_path))
    return make


def invoke_json(*args: str) -> tuple[list[dict], str]:
    """Run a `pixiu ... --json` command in-process; its parsed output and its stderr."""
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def plugin_rows() -> dict[str, dict]:
    """`pixiu plugins list --json`, by plugin name."""
    return {row["name"]: row for row in invoke_json("plugins", "list")[0]}


def domain_names() -> list[str]:
    """The names `pixiu domain list --json` shows."""
    return [row["name"] for row in invoke_json("domain", "list")[0]]


def test_a_plugin_without_a_hook_api_declaration_is_refused_with_the_fix(distribution):
    distribution("undeclared", "@hookimpl\ndef register_domains(register):\n    register(_domain('undeclared'))\n")
    domains, err = invoke_json("domain", "list")
    assert [row["name"] for row in domains] == ["chat", "toy"]
    assert "plugin 'undeclared' is skipped" in err
    row = plugin_rows()["undeclared"]
    assert row["status"].startswith("failed: PluginError") and 'PIXIU_HOOK_API = ">=1.3,<2"' in row["status"]


def test_a_plugin_for_another_hook_api_is_refused_with_both_versions(distribution):
    distribution("future", "PIXIU_HOOK_API = '>=2,<3'\n@hookimpl\ndef register_domains(register):\n    pass\n")
    status = plugin_rows()["future"]["status"]
    assert "needs pixiu hook API >=2,<3" in status and "provides hook API 1.3" in status
    assert domain_names() == ["chat", "toy"]


def test_a_garbled_hook_api_declaration_is_refused(distribution):
    distribution("garbled", "PIXIU_HOOK_API = 'one point oh'\n")
    assert "is not a version range" in plugin_rows()["garbled"]["status"]


def test_a_plugin_that_raises_in_register_domains_is_isolated(distribution):
    distribution(
        "exploding",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def register_domains(register):
            register(_domain("half"))
            raise RuntimeError("boom")
    """,
    )
    domains, err = invoke_json("domain", "list")
    assert [row["name"] for row in domains] == ["chat", "toy"]  # nothing of it, not even what it registered first
    assert "plugin 'exploding' failed in hook register_domains" in err and "RuntimeError: boom" in err
    assert plugin_rows()["exploding"]["status"] == "failed in register_domains: RuntimeError: boom"
    assert plugin_rows()["toy"]["status"] == "loaded"


def test_registering_something_that_is_not_a_domain_is_reported(distribution):
    distribution(
        "confused",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def register_domains(register):
            register({"name": "confused"})
    """,
    )
    assert domain_names() == ["chat", "toy"]
    assert plugin_rows()["confused"]["status"] == "failed in register_domains: registered a dict, not a pixiu.Domain"


def test_a_plugin_that_raises_in_process_response_leaves_the_answer_to_the_others(distribution):
    distribution(
        "rude",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def process_response(text):
            raise ValueError("no")
    """,
    )
    distribution(
        "polite",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def process_response(text):
            return text + " (please)"
    """,
    )
    assert process_response("law", "answer", adapter="law", finish_reason="stop") == "answer (please)"
    assert process_response("law", "again", adapter="law", finish_reason="length") == "again (please)"
    assert HOOK_ERRORS["rude"] == {"process_response": "ValueError: no"}


def test_a_plugin_that_raises_in_register_commands_leaves_the_command_line_working(distribution):
    distribution(
        "clumsy",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def register_commands(cli):
            raise KeyError("verb")
    """,
    )
    import click

    group = click.Group(commands={"ping": click.Command("ping", callback=lambda: click.echo("pong"))})
    add_plugin_commands(group)
    assert CliRunner().invoke(group, ["ping"]).output == "pong\n"
    assert "clumsy" in HOOK_ERRORS


def test_a_plugin_cannot_replace_a_core_command(distribution):
    distribution(
        "usurper",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        import click
        @hookimpl
        def register_commands(cli):
            @cli.command(name="serve")
            def fake():
                click.echo("hijacked")
            cli.commands["domain"] = fake
            @cli.command(name="hello")
            def hello():
                click.echo("hi")
    """,
    )
    import click

    core = click.Command("serve", callback=lambda: click.echo("core serve"))
    group = click.Group(commands={"serve": core})
    add_plugin_commands(group)
    assert CliRunner().invoke(group, ["serve"]).output == "core serve\n"
    assert "command 'serve' is pixiu's own" in HOOK_ERRORS["usurper"]["register_commands"]


def test_trace_prints_every_hook_call(distribution, monkeypatch, capsys):
    distribution(
        "traced",
        """
        PIXIU_HOOK_API = ">=1.0,<2"
        @hookimpl
        def register_domains(register):
            register(_domain("traced"))
    """,
    )
    monkeypatch.setenv("PIXIU_TRACE_PLUGINS", "1")
    assert set(get_domains()) == {"chat", "toy", "traced"}
    err = capsys.readouterr().err
    assert "pixiu: hook register_domains -> traced(register)" in err
    assert "pixiu: hook register_domains -> toy(register)" in err
