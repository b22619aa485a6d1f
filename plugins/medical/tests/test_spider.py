"""The xywy disease spider on saved pages laid out like jib.xywy.com (GBK, as the site serves them)."""

from __future__ import annotations

import pytest
from scrapy import Request
from twisted.python.failure import Failure

from pixiu_medical.items import DiseaseItem
from pixiu_medical.spiders.xywy_diseases import (
    DEFAULT_START_URL,
    SECTIONS,
    XywyDiseaseSpider,
    parse_cause_page,
    parse_drug_page,
    parse_ids,
    parse_inspect_page,
    parse_neopathy_page,
    parse_overview_page,
    parse_symptom_page,
    parse_treat_page,
)

from ._data import HOST, response_for


@pytest.fixture
def spider() -> XywyDiseaseSpider:
    return XywyDiseaseSpider()


def test_defaults_and_arguments() -> None:
    assert XywyDiseaseSpider().start_url == DEFAULT_START_URL
    local = XywyDiseaseSpider(start_url="http://127.0.0.1:8000/html/neike.html", max_pages="1", ids="3,5-7")
    assert local.allowed_domains == ["127.0.0.1"] and local.max_pages == 1 and local.ids == ["3", "5", "6", "7"]
    assert parse_ids("1-3,10") == ["1", "2", "3", "10"]
    with pytest.raises(ValueError, match="ranges such as 1-50"):
        parse_ids("a-b")


def test_list_page_requests_each_disease_by_its_canonical_url_then_the_next_page(spider: XywyDiseaseSpider) -> None:
    requests = list(spider.parse(response_for("html/neike.html")))
    assert [r.url for r in requests] == [
        HOST + "il_sii/gaishu/101.htm",
        HOST + "il_sii/gaishu/102.htm",  # linked as /il_sii_102.htm, the disease's home page
        HOST + "il_sii/gaishu/999.htm",
        HOST + "il_sii/gaishu/105.htm",
        HOST + "html/neike_2.html",
    ]
    assert [r.callback for r in requests] == [spider.parse_overview] * 4 + [spider.parse]
    last = list(spider.parse(response_for("html/neike_2.html")))
    assert [r.url for r in last] == [HOST + "il_sii/gaishu/104.htm", HOST + "il_sii/gaishu/101.htm"]  # query dropped


def test_max_pages_stops_pagination() -> None:
    spider = XywyDiseaseSpider(max_pages="1")
    assert all(r.callback != spider.parse for r in spider.parse(response_for("html/neike.html")))


def test_overview_page_is_read_from_gbk() -> None:
    found = parse_overview_page(response_for("il_sii/gaishu/101.htm"))
    assert found == {
        "name": "感冒",
        "category": ["内科", "呼吸内科"],
        "overview": "感冒是最常见的急性上呼吸道感染性疾病，多由病毒引起。一年四季均可发病，冬春季节多见。",
        "complications": ["鼻窦炎", "中耳炎"],
        "departments": ["内科", "呼吸内科"],
        "treatments": ["药物治疗", "支持性治疗"],
        "drugs": ["复方氨酚烷胺片", "感冒清热颗粒"],
    }


def test_sub_page_parsers() -> None:
    assert parse_cause_page(response_for("il_sii/cause/101.htm")) == {"causes": ["病毒感染", "受凉", "免疫力低下"]}
    assert parse_cause_page(response_for("il_sii/cause/102.htm")) == {"causes": ["遗传因素", "高盐饮食", "精神紧张"]}
    assert parse_symptom_page(response_for("il_sii/symptom/101.htm")) == {"symptoms": ["发热", "鼻塞", "流涕", "咳嗽"]}
    assert parse_inspect_page(response_for("il_sii/inspect/101.htm")) == {"examinations": ["血常规", "胸部X线检查"]}
    assert parse_inspect_page(response_for("il_sii/inspect/102.htm")) == {
        "examinations": ["血压测量", "心电图"]
    }  # by title
    assert parse_treat_page(response_for("il_sii/treat/102.htm")) == {
        "departments": ["心血管内科"],
        "treatments": ["药物治疗", "生活方式干预"],
    }
    assert parse_drug_page(response_for("il_sii/drug/101.htm")) == {"drugs": ["复方氨酚烷胺片", "连花清瘟胶囊"]}
    assert parse_neopathy_page(response_for("il_sii/neopathy/101.htm")) == {"complications": ["鼻窦炎", "肺炎"]}


def run_chain(spider: XywyDiseaseSpider, disease_id: str, missing: set[str] = frozenset()) -> DiseaseItem:
    """Feed the spider the overview page and then each sub-page it asks for; return the item it yields."""
    (request,) = spider.parse_overview(response_for(f"il_sii/gaishu/{disease_id}.htm"))
    asked = []
    while isinstance(request, Request):
        section = request.cb_kwargs["remaining"][0]
        asked.append(section)
        assert request.url == HOST + f"il_sii/{section}/{disease_id}.htm"
        assert request.meta["handle_httpstatus_list"] == [404] and request.errback == spider.section_failed
        status = 404 if section in missing else 200
        (request,) = request.callback(response_for(f"il_sii/{section}/{disease_id}.htm", status), **request.cb_kwargs)
    assert asked == list(SECTIONS)
    return request


def test_one_item_per_disease_with_every_sub_page_merged(spider: XywyDiseaseSpider) -> None:
    item = run_chain(spider, "101")
    assert isinstance(item, DiseaseItem)
    assert (item.name, item.disease_id, item.url) == ("感冒", "101", HOST + "il_sii/gaishu/101.htm")
    assert item.symptoms == ["发热", "鼻塞", "流涕", "咳嗽"]
    assert item.causes == ["病毒感染", "受凉", "免疫力低下"]
    assert item.examinations == ["血常规", "胸部X线检查"]
    assert item.treatments == ["药物治疗", "支持性治疗", "休息"]  # overview box, then the treatment page's new one
    assert item.departments == ["内科", "呼吸内科"]  # stated on two pages, kept once
    assert item.drugs == ["复方氨酚烷胺片", "感冒清热颗粒", "连花清瘟胶囊"]
    assert item.complications == ["鼻窦炎", "中耳炎", "肺炎"]


def test_a_missing_sub_page_only_leaves_its_fields_empty(spider: XywyDiseaseSpider) -> None:
    item = run_chain(spider, "102", missing={"drug"})
    assert item.name == "高血压" and item.drugs == [] and item.symptoms == ["头晕", "头痛", "心悸"]


def test_a_failed_sub_page_does_not_lose_the_disease(spider: XywyDiseaseSpider) -> None:
    (request,) = spider.parse_overview(response_for("il_sii/gaishu/104.htm"))
    failure = Failure(ConnectionError("connection refused"))
    failure.request = request  # as scrapy attaches it to download errors
    (following,) = spider.section_failed(failure)
    assert following.url == HOST + "il_sii/symptom/104.htm"
    assert following.cb_kwargs["record"]["name"] == "感冒"


def test_ids_argument_requests_overview_pages_on_the_start_host() -> None:
    import asyncio

    spider = XywyDiseaseSpider(start_url="http://127.0.0.1:8000/html/neike.html", ids="101-102")

    async def collect() -> list[Request]:
        return [request async for request in spider.start()]

    urls = [r.url for r in asyncio.run(collect())]
    assert urls == ["http://127.0.0.1:8000/il_sii/gaishu/101.htm", "http://127.0.0.1:8000/il_sii/gaishu/102.htm"]
