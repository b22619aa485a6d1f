"""Spider for the disease encyclopedia of 寻医问药网 (jib.xywy.com): one item per disease, from its page and sub-pages.

Why this source: it is public, needs no login, and splits every disease into the parts a medical knowledge
graph needs, on separate pages under one id; public knowledge-graph projects (e.g. QASystemOnMedicalKG)
were built from it.

Site layout (pages are GBK-encoded; selectors as used by public scrapers of the site, 2018-2023; check
them with `scrapy shell` before a large crawl):

* List pages, e.g. `https://jib.xywy.com/html/neike.html` (内科): links to diseases as
  `/il_sii/gaishu/<id>.htm` or `/il_sii_<id>.htm`; a "下一页" link when there are more.
* Sub-pages of disease `<id>`, all `/il_sii/<section>/<id>.htm`:
  - `gaishu` (简介): `<title>` "<name>的简介…", breadcrumbs `div.nav-bar a`, text in
    `div.jib-articl-con p`, facts in `div.articl-know p` as "就诊科室：…", "治疗方式：…",
    "常用药品：…", "并发症：…" (values separated by spaces);
  - `cause` (病因): paragraphs in `div.jib-articl p`, causes in bold or as numbered lead phrases;
  - `symptom` (症状): symptom links `a.gre`;
  - `inspect` (检查): `li.check-item a`;
  - `treat` (治疗): `div.articl-know p` facts as on the overview page;
  - `drug` (用药): `div.drug-pic-rec p a`, "<maker><name>(<generic name>)";
  - `neopathy` (并发症): links in `div.jib-articl`.

The sub-pages of one disease are requested one after the other, the item travelling along, and the item
is yielded after the last; a missing sub-page (404) or one that fails after retries only leaves its
fields empty. With pixiu's job directory, pending requests (and the item they carry) survive an
interrupted crawl.

Arguments (`pixiu domain crawl medical --arg KEY=VALUE`): `start_url`, the first list page (tests point
it at a local server; its host becomes the only allowed domain); `max_pages`, list pages to follow
(default: all); `ids`, e.g. "1-50" or "3,7,9", to fetch those disease ids on the start URL's host
instead of following list pages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from pixiu_medical.items import DiseaseItem

DEFAULT_START_URL = "https://jib.xywy.com/html/neike.html"
SECTIONS = ("cause", "symptom", "inspect", "treat", "drug", "neopathy")
"""Sub-pages read after the overview (gaishu), in request order."""
ATTRIBUTE_FIELDS = {
    "就诊科室": "departments",
    "治疗方式": "treatments",
    "治疗方法": "treatments",
    "常用药品": "drugs",
    "并发症": "complications",
}
"""Facts of the `div.articl-know` boxes, by their label, and the item field they fill."""
MAX_CAUSES = 8

_DISEASE_LINK = re.compile(r"/il_sii(?:/gaishu/|_)(\d+)\.htm")
_VALUE_SEPARATOR = re.compile(r"[\s、，,；;]+")
_NUMBERED_LEAD = re.compile(
    r"^(?:\d+|[一二三四五六七八九十]+|[(（]\d+[)）])[、.．)）]?\s*([^：:，,。；;]{2,20})[：:，,。]"
)
_NUMBERING = re.compile(r"^(?:\d+|[一二三四五六七八九十]+|[(（]\d+[)）])[、.．)）]\s*")
_GENERIC_NAME = re.compile(r"[(（]([^()（）]+)[)）]\s*$")
_SENTENCE = re.compile(r"[^。！？]+[。！？]?")
_CRUMBS_SKIPPED = frozenset({"首页", "疾病百科", "寻医问药", "寻医问药网"})


class XywyDiseaseSpider(scrapy.Spider):
    """Follow list pages to each disease and read its overview and six sub-pages into one item."""

    name = "xywy_diseases"

    def __init__(
        self,
        start_url: str | None = None,
        max_pages: str | int | None = None,
        ids: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.start_url = start_url or DEFAULT_START_URL
        self.allowed_domains = [urlparse(self.start_url).hostname or ""]
        self.max_pages = int(max_pages) if max_pages else None
        self.ids = parse_ids(ids) if ids else []
        self._list_pages = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Request the given disease ids, or else the first list page."""
        for disease_id in self.ids:
            yield scrapy.Request(overview_url(self.start_url, disease_id), callback=self.parse_overview)
        if not self.ids:
            # Never filtered as seen: a resumed or repeated crawl re-reads page 1 to find new diseases.
            yield scrapy.Request(self.start_url, callback=self.parse, dont_filter=True)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        """Parse a list page: request each disease's overview page, then the next list page."""
        self._list_pages += 1
        for href in response.css("a::attr(href)").getall():
            match = _DISEASE_LINK.search(href)
            if match:  # one canonical URL per disease, so scrapy's duplicate filter sees repeats
                yield scrapy.Request(overview_url(response.url, match.group(1)), callback=self.parse_overview)
        next_link = response.xpath('//a[contains(normalize-space(.), "下一页")]/@href').get()
        if next_link and (self.max_pages is None or self._list_pages < self.max_pages):
            yield response.follow(next_link, callback=self.parse)

    def parse_overview(self, response: Response) -> Iterator[scrapy.Request | DiseaseItem]:
        """Parse a disease's overview page, then request its first sub-page."""
        match = _DISEASE_LINK.search(response.url)
        record: dict[str, Any] = {"url": response.url, "disease_id": match.group(1) if match else ""}
        _merge(record, parse_overview_page(response))
        yield from self._next(record, list(SECTIONS))

    def parse_section(self, response: Response, record: dict[str, Any], remaining: list[str]) -> Iterator[Any]:
        """Merge one sub-page into the item (a 404 adds nothing), then go on to the next."""
        section, rest = remaining[0], remaining[1:]
        if response.status == 200:
            _merge(record, SECTION_PARSERS[section](response))
        yield from self._next(record, rest)

    def section_failed(self, failure: Failure) -> Iterator[Any]:
        """A sub-page failed after retries: log it and go on with the next, so the disease is still yielded."""
        request = failure.request  # type: ignore[attr-defined]  # scrapy sets it on download errors
        self.logger.warning("sub-page %s failed (%s); its facts are left out", request.url, failure.getErrorMessage())
        yield from self._next(request.cb_kwargs["record"], request.cb_kwargs["remaining"][1:])

    def _next(self, record: dict[str, Any], remaining: list[str]) -> Iterator[scrapy.Request | DiseaseItem]:
        """Request the next sub-page carrying the item, or yield the item when none is left."""
        if not remaining:
            yield DiseaseItem(**record)
            return
        url = re.sub(r"/il_sii/gaishu/", f"/il_sii/{remaining[0]}/", record["url"], count=1)
        yield scrapy.Request(
            url,
            callback=self.parse_section,
            errback=self.section_failed,
            cb_kwargs={"record": record, "remaining": remaining},
            meta={"handle_httpstatus_list": [404]},  # not every disease has every sub-page
        )


def overview_url(base: str, disease_id: str) -> str:
    """The overview (gaishu) page of `disease_id` on the host of `base`."""
    parts = urlparse(base)
    return f"{parts.scheme}://{parts.netloc}/il_sii/gaishu/{disease_id}.htm"


def parse_ids(text: str) -> list[str]:
    """Read an `ids` argument: "1-5", "3,7,9" or a mix such as "1-3,10"."""
    ids: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            raise ValueError(f"ids={text!r}: expected numbers and ranges such as 1-50 or 3,7,9")
        ids.extend(str(i) for i in range(int(low), int(high or low) + 1))
    return ids


def parse_overview_page(response: Response) -> dict[str, Any]:
    """Name, breadcrumb categories, introduction and the fact box of an overview (gaishu) page."""
    title = _clean(response.css("title::text").get() or "")
    name = title.split("的简介")[0].split("_")[0].strip()
    crumbs = [_clean(t) for t in response.css("div.nav-bar a::text").getall()]
    paragraphs = [_clean(p.xpath("string(.)").get() or "") for p in response.css("div.jib-articl-con p")]
    return {
        "name": name,
        "category": list(dict.fromkeys(c for c in crumbs if c and c not in _CRUMBS_SKIPPED and c != name)),
        "overview": "".join(p for p in paragraphs if p),
        **parse_fact_box(response),
    }


def parse_fact_box(response: Response) -> dict[str, list[str]]:
    """The labelled facts of `div.articl-know` paragraphs ("就诊科室：内科 呼吸内科") as item fields."""
    facts: dict[str, list[str]] = {}
    for paragraph in response.css("div.articl-know p"):
        label, sep, value = _clean(paragraph.xpath("string(.)").get() or "").partition("：")
        field = ATTRIBUTE_FIELDS.get(label.strip())
        if sep and field:
            facts.setdefault(field, []).extend(v for v in _VALUE_SEPARATOR.split(value) if v)
    return facts


def parse_cause_page(response: Response) -> dict[str, list[str]]:
    """Causes as short phrases: bold headings, else numbered lead phrases, else the first short sentence."""
    article = response.css("div.jib-articl") or response
    bold = [_NUMBERING.sub("", _clean(t)).rstrip("：:。") for t in article.css("p strong::text, p b::text").getall()]
    causes = [b for b in bold if b]
    if not causes:
        paragraphs = [_clean(p.xpath("string(.)").get() or "") for p in article.css("p")]
        causes = [m.group(1) for p in paragraphs if (m := _NUMBERED_LEAD.match(p))]
        if not causes and paragraphs:
            first = _SENTENCE.match(next((p for p in paragraphs if p), ""))
            causes = [first.group(0).rstrip("。！？")] if first and len(first.group(0)) <= 40 else []
    return {"causes": causes[:MAX_CAUSES]}


def parse_symptom_page(response: Response) -> dict[str, list[str]]:
    """Symptoms: the symptom links (`a.gre`)."""
    return {"symptoms": [_clean(t) for t in response.css("a.gre::text").getall()]}


def parse_inspect_page(response: Response) -> dict[str, list[str]]:
    """Examinations: the check-item links, by text or else title."""
    links = response.css("li.check-item a")
    return {"examinations": [_clean(a.xpath("string(.)").get() or "") or a.attrib.get("title", "") for a in links]}


def parse_treat_page(response: Response) -> dict[str, list[str]]:
    """Departments, treatments and drugs from the treatment page's fact box."""
    return parse_fact_box(response)


def parse_drug_page(response: Response) -> dict[str, list[str]]:
    """Drugs by generic name: the part in the last brackets of "<maker><name>(<generic>)", else the whole text."""
    drugs = []
    for text in response.css("div.drug-pic-rec p a::text").getall():
        text = _clean(text)
        generic = _GENERIC_NAME.search(text)
        drugs.append(generic.group(1).strip() if generic else text)
    return {"drugs": drugs}


def parse_neopathy_page(response: Response) -> dict[str, list[str]]:
    """Complications: the disease links of the complications article."""
    return {"complications": [_clean(t) for t in response.css("div.jib-articl a::text").getall()]}


SECTION_PARSERS = {
    "cause": parse_cause_page,
    "symptom": parse_symptom_page,
    "inspect": parse_inspect_page,
    "treat": parse_treat_page,
    "drug": parse_drug_page,
    "neopathy": parse_neopathy_page,
}


def _merge(record: dict[str, Any], found: dict[str, Any]) -> None:
    """Add parsed fields to the item being built: lists are extended without repeats, text is set if empty."""
    for field, value in found.items():
        if isinstance(value, list):
            values = record.setdefault(field, [])
            values.extend(v for v in value if v and v not in values)
        elif value and not record.get(field):
            record[field] = value


def _clean(text: str) -> str:
    """Collapse runs of whitespace (non-breaking and ideographic spaces included) to one space."""
    return re.sub(r"\s+", " ", text).strip()
