"""Item pipelines of the law domain: drop unusable cases, then drop cases already crawled."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIN_FACT_CHARS = 20
"""Shorter facts are a heading or a stub, not a description of a case."""


class ValidateCasePipeline:
    """Drop cases without facts or without a recognised charge; the messages are stable drop reasons."""

    def process_item(self, item: Any) -> Any:
        """Return the item if it has facts and charges, else raise DropItem saying what is missing."""
        adapter = ItemAdapter(item)
        fact = (adapter.get("fact") or "").strip()
        if not fact:
            logger.info("no facts in %s (%s)", adapter.get("title"), adapter.get("url"))
            raise DropItem("missing facts: the case has no 【基本案情】 section")
        if len(fact) < MIN_FACT_CHARS:
            raise DropItem(f"facts too short: fewer than {MIN_FACT_CHARS} characters")
        if not (adapter.get("meta") or {}).get("accusation"):
            logger.info("no charge in title %r (%s)", adapter.get("title"), adapter.get("url"))
            raise DropItem("no charge: neither the title nor the keywords name a known charge")
        return item


class DedupeCasePipeline:
    """Drop a case seen before, by guiding-case number or else by its facts.

    With a job directory (resumable crawls) the keys seen are kept in the spider's persisted state,
    so a resumed crawl does not write a case twice.
    """

    def __init__(self, crawler: Crawler | None = None):
        self.crawler = crawler
        self._seen: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupeCasePipeline:
        """Build the pipeline with the crawler, whose spider carries the persisted state."""
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        """Return the item unless its key was seen, in which case raise DropItem."""
        adapter = ItemAdapter(item)
        key = adapter.get("case_number") or hashlib.sha1(adapter.get("fact", "").encode("utf-8")).hexdigest()
        seen = self._seen_keys()
        if key in seen:
            raise DropItem("duplicate case: already crawled")
        seen.add(key)
        return item

    def _seen_keys(self) -> set[str]:
        """Return the keys seen, kept in the spider's persisted state once that exists (from spider start)."""
        if self._seen is None:
            state = getattr(getattr(self.crawler, "spider", None), "state", None)
            self._seen = state.setdefault("seen_case_keys", set()) if isinstance(state, dict) else set()
        return self._seen
