"""Pages plugins add (`register_web_pages`): bad registrations are reported, and the chat page links the rest."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter

from pixiu import WebPage, hookimpl
from pixiu.plugins import HOOK_ERRORS, get_web_pages
from pixiu.serve.server import background_server
from pixiu.testing.web import browser, open_page  # noqa: F401  (browser: a fixture)

EXAMPLE_PAGE = Path(__file__).parents[1] / "core" / "example_page"
"""A page whose script shows what its own endpoint `api/hello` says."""
api = APIRouter()


@api.get("/hello")
def hello() -> dict[str, str]:
    """The example page's endpoint."""
    return {"greeting": "你好 from a plugin page"}


class Pages:
    """A third-party plugin adding a good page and one with a name that is no URL segment."""

    @staticmethod
    @hookimpl
    def register_web_pages(register):
        register(WebPage(name="example", title="Example 例子", static=EXAMPLE_PAGE, router=api))
        register(WebPage(name="Not A Segment", title="Bad", static=EXAMPLE_PAGE))


class NoIndex:
    """A plugin whose page has no index.html."""

    @staticmethod
    @hookimpl
    def register_web_pages(register):
        register(WebPage(name="empty", title="Empty", static=EXAMPLE_PAGE / "nowhere"))


class SameName:
    """Another plugin taking a name already taken."""

    @staticmethod
    @hookimpl
    def register_web_pages(register):
        register(WebPage(name="example", title="Mine", static=EXAMPLE_PAGE))


def test_bad_pages_are_skipped_and_reported_on_their_plugin(register_plugin) -> None:
    register_plugin(Pages, "pages")
    register_plugin(SameName, "same")
    register_plugin(NoIndex, "no-index")
    pages = get_web_pages()
    assert list(pages) == ["example"] and pages["example"].title == "Example 例子"
    assert "'Not A Segment' is not a URL segment" in HOOK_ERRORS["pages"]["register_web_pages"]
    assert "has no" in HOOK_ERRORS["no-index"]["register_web_pages"]
    assert "already registered by plugin 'pages'" in HOOK_ERRORS["same"]["register_web_pages"]


def test_the_chat_page_links_each_plugin_page(register_plugin, make_app, engine, browser) -> None:  # noqa: F811
    register_plugin(Pages, "pages")
    with background_server(make_app(engine)) as url:
        page = open_page(browser, url + "/")
        link = page.wait_for_selector("#plugin-pages a")
        assert link.text_content() == "Example 例子" and link.get_attribute("href") == "plugins/example/"
        link.click()
        page.wait_for_selector("#greeting:has-text('你好 from a plugin page')")
        assert page.url == f"{url}/plugins/example/" and page.errors == []
        page.context.close()
