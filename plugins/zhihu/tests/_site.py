"""Saved Zhihu pages and API answers (plugins/zhihu/tests/fixtures/site), served by URL as the site would.

A URL maps to a file by its path: `/question/1001` -> `question/1001.html`, and an answers API page
`/api/v4/questions/1001/answers?...&offset=20` -> `api/v4/questions/1001/answers/offset_20.json`. A
status other than 200 is part of the file name: `question/1004.404.html` is served with HTTP 404.
Other query parameters are ignored, as they are by the site for these fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from scrapy import Request
from scrapy.http import HtmlResponse, TextResponse

from pixiu.testing.loopback import serving

SITE = Path(__file__).resolve().parent / "fixtures" / "site"
ZHIHU = "https://www.zhihu.com"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json; charset=utf-8"}


def find_fixture(url: str) -> tuple[Path, int] | None:
    """The fixture file for a URL and the HTTP status to serve it with, or None (a 404 without body)."""
    parts = urlsplit(url)
    stem = SITE / parts.path.strip("/")
    offset = parse_qs(parts.query).get("offset")
    if offset:
        stem = stem / f"offset_{offset[0]}"
    for path in sorted(stem.parent.glob(stem.name + ".*")):
        status = path.suffixes[0][1:] if len(path.suffixes) == 2 else "200"
        if status.isdigit():
            return path, int(status)
    return None


def response_for(url: str, request: Request | None = None) -> TextResponse:
    """The response the spider would get for `url` from the saved site (an HtmlResponse for pages)."""
    found = find_fixture(url)
    assert found, f"no fixture for {url}"
    path, status = found
    cls = HtmlResponse if path.suffix == ".html" else TextResponse
    headers = {"Content-Type": CONTENT_TYPES[path.suffix]}
    return cls(
        url=url,
        status=status,
        body=path.read_bytes(),
        headers=headers,
        encoding="utf-8",
        request=request or Request(url),
    )


class _FixtureHandler(BaseHTTPRequestHandler):
    """Serve the saved site by URL; everything else (robots.txt included) is a bare 404."""

    def do_GET(self) -> None:
        found = find_fixture(self.path)
        if found is None:
            self.send_error(404)
            return
        path, status = found
        body = path.read_bytes()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPES[path.suffix])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_site() -> Iterator[str]:
    """Serve the saved site on 127.0.0.1 at a free port; yield its base URL."""
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _FixtureHandler)) as url:
        yield url
