"""Item pipelines of the law domain: drop unusable cases, then drop cases already crawled."""

from __future__ import annotations

import logging
from typing import Any

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from pixiu.crawl import DedupePipeline

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


class DedupeCasePipeline(DedupePipeline):
    """Drop a case seen before, by guiding-case number or else by its facts (kept across resumed crawls)."""

    key_fields = ("case_number", "fact")
    state_key = "seen_case_keys"
    reason = "duplicate case: already crawled"
