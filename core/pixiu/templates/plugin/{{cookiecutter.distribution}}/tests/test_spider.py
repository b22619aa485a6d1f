"""The FAQ spider on a saved page, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from {{ cookiecutter.package }}.spiders.faq import FaqSpider

PAGE = Path(__file__).parent / "fixtures" / "faq_page.html"
URL = "https://support.example.com/faq"


def test_parses_entries_and_follows_the_next_page() -> None:
    response = HtmlResponse(url=URL, body=PAGE.read_bytes(), encoding="utf-8", request=Request(URL))
    output = list(FaqSpider(start_url=URL).parse(response))
    records = [o for o in output if isinstance(o, dict)]
    assert records == [
        {"question": "How long is the warranty?", "answer": "Two years from delivery.", "url": URL},
        {"question": "Can I return it?", "answer": "Yes, within 30 days.", "url": URL},
    ]
    assert [r.url for r in output if isinstance(r, Request)] == ["https://support.example.com/faq?page=2"]


def test_needs_a_start_url() -> None:
    with pytest.raises(ValueError, match="start_url"):
        FaqSpider()
