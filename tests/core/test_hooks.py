"""Each hookspec, exercised through a plugin object the way a third-party plugin would implement it."""

import click
from click.testing import CliRunner

from pixiu import ModelSource, hookimpl, hookspecs
from pixiu.cli import add_plugin_commands
from pixiu.models import resolve_base
from pixiu.plugins import get_domains, get_model_sources
from pixiu.serve.postprocess import process_response
from toy_domain import TOY


class ExamplePlugin:
    """Implements every hook."""

    @staticmethod
    @hookimpl
    def register_domains(register):
        register(TOY)

    @staticmethod
    @hookimpl
    def register_model_sources(register):
        register(ModelSource(scheme="folder", description="a folder by another name", fetch=lambda ref, cache: ref))

    @staticmethod
    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello():
            """Say hello."""
            click.echo("hello from a plugin")

    @staticmethod
    @hookimpl
    def process_response(domain, text, adapter, finish_reason):
        if domain != "toy":
            return None
        cut = " [cut]" if finish_reason == "length" else ""
        return f"{text}{cut}\n(toy answers are not advice; {adapter})"


HOOKS = {
    name for name in dir(hookspecs) if not name.startswith("_") and hasattr(getattr(hookspecs, name), "pixiu_spec")
}


def test_the_example_plugin_covers_every_hook():
    assert {"register_domains", "register_model_sources", "register_commands", "process_response"} == HOOKS
    assert all(hasattr(ExamplePlugin, name) for name in HOOKS)


def test_hook_register_domains(register_plugin):
    register_plugin(ExamplePlugin, "example")
    assert get_domains()["toy"] is TOY


def test_hook_register_model_sources(register_plugin, tiny_model_dir):
    register_plugin(ExamplePlugin, "example")
    assert "folder" in get_model_sources()
    assert resolve_base(f"folder:{tiny_model_dir}") == str(tiny_model_dir)


def test_hook_register_commands(register_plugin):
    register_plugin(ExamplePlugin, "example")
    group = click.Group()
    add_plugin_commands(group)
    result = CliRunner().invoke(group, ["hello"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n"


class Shout:
    """A second post-processor, to show that rewrites chain."""

    @staticmethod
    @hookimpl
    def process_response(text):
        return text.upper()


def test_hook_process_response(register_plugin):
    assert process_response("toy", "blue", adapter="toy", finish_reason="stop") == "blue"
    register_plugin(ExamplePlugin, "example")
    told = "blue\n(toy answers are not advice; toy-v2)"
    assert process_response("toy", "blue", adapter="toy-v2", finish_reason="stop") == told
    cut = "blue [cut]\n(toy answers are not advice; toy-v2)"
    assert process_response("toy", "blue", adapter="toy-v2", finish_reason="length") == cut
    assert process_response("law", "blue", adapter="toy", finish_reason="stop") == "blue"  # the domain decides
    assert process_response(None, "blue", adapter="toy", finish_reason="stop") == "blue"  # unknown domain
    register_plugin(Shout, "shout")  # registered last, so pluggy runs it first; it takes only `text`
    shouted = "BLUE [cut]\n(toy answers are not advice; toy)"
    assert process_response("toy", "blue", adapter="toy", finish_reason="length") == shouted
