"""A spider skeleton for FAQ pages: each `.faq-item` holds a `.question` and an `.answer`; `a[rel=next]` pages on.

Adapt the selectors to your site. Run it with
`pixiu domain crawl {{ cookiecutter.name }} --arg start_url=https://example.com/faq`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response


class FaqSpider(scrapy.Spider):
    """Crawls question/answer pairs from FAQ pages, following the next-page link."""

    name = "{{ cookiecutter.name }}_faq"

    def __init__(self, start_url: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        if not start_url:
            raise ValueError("FaqSpider needs a start page: pass --arg start_url=https://...")
        self.start_urls = [start_url]
        self.allowed_domains = [urlparse(start_url).hostname or ""]

    def parse(self, response: Response) -> Iterator[dict[str, str] | scrapy.Request]:
        """Yield one record per FAQ entry on the page, then a request for the next page if there is one."""
        for item in response.css(".faq-item"):
            question = _text(item.css(".question ::text").getall())
            answer = _text(item.css(".answer ::text").getall())
            if question and answer:
                yield {"question": question, "answer": answer, "url": response.url}
        next_page = response.css("a[rel=next]::attr(href)").get()
        if next_page:
            yield response.follow(next_page, callback=self.parse)


def _text(pieces: list[str]) -> str:
    """Join text nodes into one line with single spaces."""
    return " ".join(" ".join(pieces).split())
