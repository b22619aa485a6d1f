"""Each hookspec, exercised through a plugin object the way a third-party plugin would implement it."""

from pathlib import Path

import click
from click.testing import CliRunner
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from pixiu import ModelSource, WebPage, hookimpl, hookspecs
from pixiu.cli import add_plugin_commands
from pixiu.models import resolve_base
from pixiu.plugins import get_domains, get_model_sources
from pixiu.serve.plugin_pages import mount_pages
from pixiu.serve.postprocess import process_response
from toy_domain import TOY

EXAMPLE_PAGE = Path(__file__).with_name("example_page")
"""A plugin page's files: index.html and a script asking the page's own endpoint."""
example_api = APIRouter()


@example_api.get("/hello")
def hello() -> dict[str, str]:
    """The example page's own endpoint."""
    return {"greeting": "hello from a plugin page"}


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
    def register_web_pages(register):
        register(WebPage(name="example", title="Example", static=EXAMPLE_PAGE, router=example_api))

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
    hooks = {
        "register_domains",
        "register_model_sources",
        "register_commands",
        "register_web_pages",
        "process_response",
    }
    assert hooks == HOOKS
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


def test_hook_register_web_pages(register_plugin):
    def client() -> TestClient:
        app = FastAPI()
        mount_pages(app)
        return TestClient(app)

    assert client().get("/v1/pages").json()["data"] == []
    register_plugin(ExamplePlugin, "example")
    http = client()
    card = {"name": "example", "title": "Example", "url": "plugins/example/", "lang": "en"}
    assert http.get("/v1/pages").json() == {"object": "list", "data": [card]}
    page = http.get("/plugins/example/")
    assert page.status_code == 200 and "<title>Example page</title>" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "api/hello" in http.get("/plugins/example/static/hello.js").text
    assert http.get("/plugins/example/api/hello").json() == {"greeting": "hello from a plugin page"}
    assert http.get("/plugins/example/static/../../test_hooks.py").status_code == 404


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
