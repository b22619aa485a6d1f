"""The toy crawler's domain, spider and pipeline: pages of `<li data-id>` entries, each page linking the next."""

import dataclasses

import scrapy

from pixiu import hookimpl
from pixiu.crawl import DedupePipeline
from toy_domain import TOY


class EntrySpider(scrapy.Spider):
    """Yield one item per entry and follow `a.next`."""

    name = "toy_entries"

    def __init__(self, start_url: str, **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [start_url]

    def parse(self, response):
        """Entries of one page, then the next page."""
        for entry in response.css("li"):
            yield {"entry_id": entry.attrib.get("data-id"), "text": entry.css("::text").get(), "url": response.url}
        yield from response.follow_all(css="a.next", callback=self.parse)


class DedupeEntryPipeline(DedupePipeline):
    """Drop an entry seen before, by id, else by text."""

    key_fields = ("entry_id", "text")
    state_key = "seen_entries"
    reason = "duplicate entry: already crawled"


@hookimpl
def register_domains(register):
    """Register the toy domain with this module's spider."""
    register(dataclasses.replace(TOY, name="toy-crawler", spiders=("toy_crawler.plugin:EntrySpider",)))
