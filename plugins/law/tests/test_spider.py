"""The guiding-case spider on saved pages that follow www.spp.gov.cn's layout."""

from __future__ import annotations

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from pixiu_law.items import CaseItem
from pixiu_law.spiders.spp_guiding_cases import DEFAULT_START_URL, SppGuidingCaseSpider, split_cases

from ._data import FIXTURES

SITE = "https://www.spp.gov.cn/spp/"


def response_for(relative: str) -> HtmlResponse:
    """Build the response the spider would get for a fixture page under spp/."""
    url = SITE + relative
    body = (FIXTURES / "spp" / relative).read_bytes()
    return HtmlResponse(url=url, body=body, encoding="utf-8", request=Request(url))


@pytest.fixture
def spider() -> SppGuidingCaseSpider:
    return SppGuidingCaseSpider()


def test_defaults_and_start_url_argument() -> None:
    assert SppGuidingCaseSpider().start_url == DEFAULT_START_URL
    local = SppGuidingCaseSpider(start_url="http://127.0.0.1:8000/spp/jczdal/index.shtml", max_pages="1")
    assert local.allowed_domains == ["127.0.0.1"] and local.max_pages == 1


def test_list_page_requests_cases_then_next_page(spider: SppGuidingCaseSpider) -> None:
    requests = list(spider.parse(response_for("jczdal/index.shtml")))
    assert [r.url for r in requests] == [
        SITE + "jczdal/202012/t20201221_490101.shtml",
        SITE + "jczdal/202012/t20201221_490102.shtml",
        SITE + "jczdal/index_1.shtml",
    ]
    assert [r.callback for r in requests] == [spider.parse_case, spider.parse_case, spider.parse]


def test_last_list_page_has_no_next_page(spider: SppGuidingCaseSpider) -> None:
    requests = list(spider.parse(response_for("jczdal/index_1.shtml")))
    assert len(requests) == 3 and all(r.callback == spider.parse_case for r in requests)


def test_max_pages_stops_pagination() -> None:
    spider = SppGuidingCaseSpider(max_pages="1")
    assert all(r.callback != spider.parse for r in spider.parse(response_for("jczdal/index.shtml")))


def test_single_case_page(spider: SppGuidingCaseSpider) -> None:
    (item,) = spider.parse_case(response_for("jczdal/202012/t20201221_490101.shtml"))
    assert isinstance(item, CaseItem)
    assert item.title == "张某某等人诈骗案" and item.case_number == "检例第901号"
    assert item.meta == {"accusation": ["诈骗"]}
    assert item.keywords == ["电信网络诈骗", "共同犯罪", "主从犯认定"]
    assert item.fact.startswith("被告人张某某，男，1990年出生") and item.fact.endswith("共计人民币二十三万余元。")
    assert "【" not in item.fact and "检察机关审查起诉" not in item.fact
    assert item.url == SITE + "jczdal/202012/t20201221_490101.shtml"


def test_batch_page_yields_every_case(spider: SppGuidingCaseSpider) -> None:
    first, second = spider.parse_case(response_for("jczdal/202012/t20201221_490102.shtml"))
    assert (first.title, first.case_number) == ("赵某危险驾驶案", "检例第902号")
    assert first.meta == {"accusation": ["危险驾驶"]}
    assert first.fact.endswith("186毫克/100毫升。") and "钱某" not in first.fact
    assert (second.title, second.case_number) == ("钱某盗窃、诈骗案", "检例第903号")
    assert second.meta == {"accusation": ["盗窃", "诈骗"]}
    assert "行为人分别实施" not in second.fact


def test_case_without_facts_is_yielded_empty_for_the_pipeline(spider: SppGuidingCaseSpider) -> None:
    (item,) = spider.parse_case(response_for("jczdal/202011/t20201110_480201.shtml"))
    assert item.fact == "" and item.meta == {"accusation": ["挪用资金"]}


def test_case_without_charge_in_title(spider: SppGuidingCaseSpider) -> None:
    (item,) = spider.parse_case(response_for("jczdal/202011/t20201110_480202.shtml"))
    assert item.meta == {"accusation": []} and item.fact


def test_split_cases_title_on_number_line_and_keyword_fallback() -> None:
    paragraphs = [
        "检例第7号：李某挪用公款案",
        "【关键词】挪用公款 追诉时效",
        "【基本案情】李某利用职务便利挪用公款。",
        "后归还。",
        "【指导意义】",
        "办理此类案件可参照（检例第5号）。",  # a citation, not the start of another case
    ]
    (case,) = split_cases(paragraphs, "页面标题")
    assert case == {
        "title": "李某挪用公款案",
        "case_number": "检例第7号",
        "keywords": ["挪用公款", "追诉时效"],
        "fact": "李某利用职务便利挪用公款。后归还。",
    }


def test_split_cases_without_number_uses_page_title() -> None:
    (case,) = split_cases(["【基本案情】某甲盗窃。"], "某甲盗窃案")
    assert case["title"] == "某甲盗窃案" and case["case_number"] == "" and case["fact"] == "某甲盗窃。"
