"""Item pipelines of the medical domain: drop unusable diseases, drop repeats, and merge the rest into the graph."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from itemadapter import ItemAdapter
from scrapy.exceptions import DropItem

from pixiu.crawl import DedupePipeline
from pixiu.files import write_jsonl
from pixiu_medical.kg import RELATIONS, kg_stats, merge_triples, read_kg, triples_from_disease

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

KG_SUFFIX = ".kg.jsonl"
"""The graph of a crawl is written next to its feed: raw.jsonl -> raw.kg.jsonl."""
_FACT_FIELDS = tuple(field for field, _, _ in RELATIONS.values())


class ValidateDiseasePipeline:
    """Drop diseases without a name or without a single fact; the messages are stable drop reasons."""

    def process_item(self, item: Any) -> Any:
        """Return the item if it names a disease and states at least one fact, else raise DropItem."""
        adapter = ItemAdapter(item)
        if not (adapter.get("name") or "").strip():
            logger.info("no disease name on %s", adapter.get("url"))
            raise DropItem("no name: the overview page has no disease title")
        if not any(adapter.get(field) for field in _FACT_FIELDS):
            raise DropItem("no facts: neither the overview nor any sub-page gave a fact")
        return item


class DedupeDiseasePipeline(DedupePipeline):
    """Drop a disease whose id (or, without one, URL) was seen before, across resumed crawls too.

    Diseases with the same name under different ids are kept: the knowledge graph merges their facts.
    """

    key_fields = ("disease_id", "url")
    state_key = "seen_disease_keys"
    reason = "duplicate disease: already crawled"


class KnowledgeGraphPipeline:
    """Collect the facts of every item that gets this far and, when the spider closes, merge them into the graph.

    The graph goes to the `MEDICAL_KG_OUTPUT` setting, or else next to the crawl's JSONL feed
    (`raw.jsonl` -> `raw.kg.jsonl`). Facts already in that file are kept, so repeated and resumed crawls
    grow one graph. `pixiu medical kg build` rebuilds a graph from feeds at any time.
    """

    def __init__(self, output: Path | None):
        self.output = output
        self.triples: list[dict[str, Any]] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> KnowledgeGraphPipeline:
        """Find where the graph goes from the crawler's settings."""
        configured = crawler.settings.get("MEDICAL_KG_OUTPUT")
        if configured:
            return cls(Path(configured))
        feeds = [_local_path(str(uri)) for uri in crawler.settings.getdict("FEEDS")]
        local = [path for path in feeds if path is not None]
        return cls(kg_path_for(local[0]) if local else None)

    def process_item(self, item: Any) -> Any:
        """Remember the item's facts and pass it on unchanged."""
        self.triples.extend(triples_from_disease(ItemAdapter(item).asdict()))
        return item

    def close_spider(self, spider: Any = None) -> None:
        """Merge the facts collected into the graph file and log its size."""
        if self.output is None:
            logger.warning("no local FEEDS file and no MEDICAL_KG_OUTPUT setting: the knowledge graph is not written")
            return
        existing = read_kg(self.output) if self.output.is_file() else []
        merged = merge_triples([*existing, *self.triples])
        write_jsonl(self.output, merged)
        stats = kg_stats(merged)
        logger.info("knowledge graph %s: %d entities, %d relations", self.output, stats["entities"], stats["relations"])


def kg_path_for(feed: Path) -> Path:
    """Where the graph of a crawl whose feed is `feed` is written: same folder, `.kg.jsonl` ending."""
    name = feed.name[: -len(".jsonl")] if feed.name.endswith(".jsonl") else feed.stem
    return feed.with_name(name + KG_SUFFIX)


def _local_path(uri: str) -> Path | None:
    """The file a feed URI writes to: a plain path or a file:// URI; None for remote feeds (s3://, ftp://)."""
    if uri.startswith("file://"):
        return Path(urlparse(uri).path)
    return None if "://" in uri else Path(uri)
