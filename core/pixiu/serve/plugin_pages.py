"""Pages plugins add to the web app (`register_web_pages`): each served at `/plugins/<name>/` with its files under
`/plugins/<name>/static/` and its own endpoints under `/plugins/<name>/api/`, and listed at `GET /v1/pages` (a
pixiu extension) for the chat page's header."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from pixiu.domain import WebPage
from pixiu.plugins import get_web_pages

PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'"
"""The chat page's policy: a plugin's page, too, loads only this server's files and talks only to it."""

router = APIRouter()


class PageCard(BaseModel):
    """One plugin page, as `GET /v1/pages` lists it."""

    name: str
    """The page's name, its URL segment."""
    title: str
    """The link text."""
    url: str
    """Where the page is, relative to the server's root."""
    lang: str
    """The language of the title."""


class PageList(BaseModel):
    """`GET /v1/pages`: the plugin pages of this server."""

    object: str = "list"
    data: list[PageCard]


def mount_pages(app: FastAPI) -> None:
    """Serve every registered plugin page on `app`, and list them at `GET /v1/pages`."""
    pages = get_web_pages()
    app.state.web_pages = pages
    for page in pages.values():
        app.add_api_route(f"/plugins/{page.name}/", _index(page), include_in_schema=False)
        if page.router is not None:
            app.include_router(page.router, prefix=f"/plugins/{page.name}/api", tags=[f"plugin page {page.name}"])
        app.mount(f"/plugins/{page.name}/static", StaticFiles(directory=page.static), name=f"plugin-{page.name}")
    app.include_router(router)


def _index(page: WebPage):
    """The route answering a page's `index.html`."""

    async def index() -> FileResponse:
        return FileResponse(page.static / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    index.__doc__ = f"The {page.title} page."
    return index


@router.get("/v1/pages")
async def list_pages(request: Request) -> PageList:
    """The plugin pages this app serves, in the order their names sort."""
    pages: dict[str, WebPage] = request.app.state.web_pages
    cards = [
        PageCard(name=name, title=p.title, url=f"plugins/{name}/", lang=p.lang) for name, p in sorted(pages.items())
    ]
    return PageList(data=cards)
