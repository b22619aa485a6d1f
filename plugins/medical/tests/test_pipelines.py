"""The medical pipelines: validation and de-duplication through DropItem, the graph written when the spider closes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from scrapy.exceptions import DropItem
from scrapy.settings import Settings

from pixiu_medical.items import DiseaseItem
from pixiu_medical.kg import read_kg
from pixiu_medical.pipelines import DedupeDiseasePipeline, KnowledgeGraphPipeline, ValidateDiseasePipeline, kg_path_for


def item(**changes: object) -> DiseaseItem:
    fields = {
        "name": "感冒",
        "url": "https://jib.xywy.com/il_sii/gaishu/101.htm",
        "disease_id": "101",
        "symptoms": ["发热", "鼻塞"],
    }
    return DiseaseItem(**{**fields, **changes})


def test_valid_item_passes() -> None:
    good = item()
    assert ValidateDiseasePipeline().process_item(good) is good
    assert ValidateDiseasePipeline().process_item(item(symptoms=[], overview="感冒是常见病。")) is not None


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"name": " "}, "no name"), ({"symptoms": []}, "no facts")],
)
def test_invalid_items_are_dropped_with_a_reason(changes: dict, reason: str) -> None:
    with pytest.raises(DropItem, match=reason):
        ValidateDiseasePipeline().process_item(item(**changes))


def test_duplicates_are_dropped_by_id_or_url() -> None:
    pipeline = DedupeDiseasePipeline()
    pipeline.process_item(item())
    pipeline.process_item(item(disease_id="104"))  # same name, other id: kept, the graph merges them
    with pytest.raises(DropItem, match="duplicate disease"):
        pipeline.process_item(item(symptoms=["头痛"]))
    pipeline.process_item(item(disease_id="", url="u1"))
    with pytest.raises(DropItem):
        pipeline.process_item(item(disease_id="", url="u1"))


def test_seen_ids_live_in_the_spiders_persisted_state() -> None:
    state: dict = {}
    crawler = SimpleNamespace(spider=SimpleNamespace(state=state))
    DedupeDiseasePipeline(crawler).process_item(item())
    assert state == {"seen_disease_keys": {"101"}}
    with pytest.raises(DropItem):  # a resumed crawl starts a new pipeline with the saved state
        DedupeDiseasePipeline(crawler).process_item(item())


def crawler_with(**settings: object) -> SimpleNamespace:
    return SimpleNamespace(settings=Settings(settings))


def test_graph_path_follows_the_feed_or_the_setting(tmp_path: Path) -> None:
    feed = tmp_path / "raw.jsonl"
    assert kg_path_for(feed) == tmp_path / "raw.kg.jsonl"
    for uri in (feed, f"file://{feed}"):
        assert KnowledgeGraphPipeline.from_crawler(crawler_with(FEEDS={uri: {}})).output == tmp_path / "raw.kg.jsonl"
    assert KnowledgeGraphPipeline.from_crawler(crawler_with(FEEDS={"s3://bucket/raw.jsonl": {}})).output is None
    chosen = crawler_with(FEEDS={feed: {}}, MEDICAL_KG_OUTPUT=str(tmp_path / "g.jsonl"))
    assert KnowledgeGraphPipeline.from_crawler(chosen).output == tmp_path / "g.jsonl"


def test_graph_is_merged_into_the_file_when_the_spider_closes(tmp_path: Path) -> None:
    output = tmp_path / "raw.kg.jsonl"
    first = KnowledgeGraphPipeline(output)
    passed = first.process_item(item())
    assert passed.symptoms == ["发热", "鼻塞"]
    first.close_spider()
    second = KnowledgeGraphPipeline(output)  # a later crawl adds to the same graph
    second.process_item(item(disease_id="104", url="u104", symptoms=["鼻塞", "头痛"]))
    second.close_spider()
    graph = read_kg(output)
    assert [(t["tail"], len(t["sources"])) for t in graph] == [("发热", 1), ("鼻塞", 2), ("头痛", 1)]


def test_no_feed_no_graph(tmp_path: Path) -> None:
    pipeline = KnowledgeGraphPipeline(None)
    pipeline.process_item(item())
    pipeline.close_spider()  # only logs
    assert list(tmp_path.iterdir()) == []
