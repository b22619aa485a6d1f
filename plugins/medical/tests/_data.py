"""Where the medical tests find fixtures and shared real data (never shipped; tests skip when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

SHARED_MEDICAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "medical"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SITE = FIXTURES / "xywy"
"""Saved pages laid out like jib.xywy.com (GBK-encoded), served as the site root."""
HOST = "https://jib.xywy.com/"


def shared_or_skip(name: str) -> Path:
    """A file of shared/data/medical, or skip the test when it is not there."""
    path = SHARED_MEDICAL / name
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def response_for(relative: str, status: int = 200) -> HtmlResponse:
    """The response the spider would get for a fixture page (no encoding given: the page's meta says GBK)."""
    url = HOST + relative
    body = (SITE / relative).read_bytes() if status == 200 else b"<html><body>404</body></html>"
    return HtmlResponse(url=url, body=body, status=status, request=Request(url))
