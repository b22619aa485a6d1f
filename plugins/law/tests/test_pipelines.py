"""The law pipelines: validation and de-duplication through DropItem."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scrapy.exceptions import DropItem

from pixiu_law.items import CaseItem
from pixiu_law.pipelines import DedupeCasePipeline, ValidateCasePipeline

FACT = "被告人钱某趁同事不备，秘密取走其手机并转走人民币八千元。"


def item(**changes: object) -> CaseItem:
    fields = {"fact": FACT, "meta": {"accusation": ["盗窃"]}, "url": "u", "title": "钱某盗窃案"}
    return CaseItem(**{**fields, "case_number": "检例第1号", **changes})


def test_valid_item_passes() -> None:
    good = item()
    assert ValidateCasePipeline().process_item(good) is good


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"fact": ""}, "missing facts"),
        ({"fact": "太短。"}, "facts too short"),
        ({"meta": {"accusation": []}}, "no charge"),
    ],
)
def test_invalid_items_are_dropped_with_a_reason(changes: dict, reason: str) -> None:
    with pytest.raises(DropItem, match=reason):
        ValidateCasePipeline().process_item(item(**changes))


def test_duplicates_are_dropped_by_number_or_facts() -> None:
    pipeline = DedupeCasePipeline()
    pipeline.process_item(item())
    with pytest.raises(DropItem, match="duplicate"):
        pipeline.process_item(item(url="other"))
    pipeline.process_item(item(case_number="", fact=FACT + "另查明。"))
    with pytest.raises(DropItem, match="duplicate"):
        pipeline.process_item(item(case_number="", fact=FACT + "另查明。"))


def test_seen_keys_live_in_the_persisted_spider_state() -> None:
    state: dict = {}
    crawler = SimpleNamespace(spider=SimpleNamespace(state=state))
    DedupeCasePipeline.from_crawler(crawler).process_item(item())
    assert state["seen_case_keys"] == {"检例第1号"}
    with pytest.raises(DropItem):  # a resumed crawl starts from the same state
        DedupeCasePipeline.from_crawler(crawler).process_item(item())
