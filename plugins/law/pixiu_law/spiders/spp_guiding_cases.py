"""Spider for the Supreme People's Procuratorate's guiding cases (最高人民检察院 检察机关指导性案例).

Why this source: the guiding cases are official, public, free of personal data (names are reduced
to 张某某), and each states its facts (【基本案情】) apart from the legal reasoning, under a title that
names the charges by convention (e.g. "张某某等人诈骗案").

Site layout (www.spp.gov.cn, a TRS-CMS site; selectors as used by public scrapers of it):

* List pages: `https://www.spp.gov.cn/spp/jczdal/index.shtml`, then `index_1.shtml`,
  `index_2.shtml`, ... Entries are `div.commonList_con ul.li_line li`, each an `<a href>` to a
  case page plus a `<span>` date. The pager is drawn by script,
  `createPageHTML(<pages>, <current, from 0>, "index", "shtml")`; a plain "下一页" link is
  followed too when a page has one.
* Case pages: `/spp/jczdal/<yyyymm>/t<yyyymmdd>_<id>.shtml`. The title is in `div.detail_tit`, the
  text in `div#fontzoom` (`div.TRS_Editor`) as `<p>` paragraphs: the case name, `（检例第N号）`, then
  sections opened by bracketed headings, 【关键词】 【要旨】 【基本案情】 【检察机关履职过程】 (or
  【诉讼过程】) 【指导意义】 【相关规定】. A heading may stand alone or begin its first paragraph.
  A page announcing a whole batch holds several cases, each starting at its `（检例第N号）` line.

Each case becomes one `CaseItem`: facts from 【基本案情】, charges found in the title (else in the
keywords) with `pixiu_law.parser.parse_charges`. Cases without facts or charges are still yielded;
the pipelines drop them with a reason.

Arguments (`pixiu domain crawl law --arg KEY=VALUE`): `start_url`, the first list page (tests point
it at a local server; the site's host becomes the only allowed domain), and `max_pages`, the number
of list pages to follow (default: all).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlparse

import scrapy
from scrapy.http import Response
from scrapy.selector import SelectorList

from pixiu_law.items import CaseItem
from pixiu_law.parser import parse_charges

DEFAULT_START_URL = "https://www.spp.gov.cn/spp/jczdal/index.shtml"

_NUMBER_LINE = re.compile(
    r"^(?P<before>.{0,60}?)\s*[(（]\s*(?P<number>检例第\s*\d+\s*号)\s*[)）]$"
    r"|^(?P<number2>检例第\s*\d+\s*号)\s*[：:]\s*(?P<after>.{1,60})$"
)
"""A line giving a case's number: "（检例第1号）", "张某诈骗案（检例第1号）" or "检例第1号：张某诈骗案".
Anchored and short, so prose that cites another case ("参照检例第5号") does not start a case."""
_HEADING = re.compile(r"^【([^】]{1,12})】\s*")
_PAGER = re.compile(r"createPageHTML\(\s*(\d+)\s*,\s*(\d+)\s*,\s*[\"']([^\"']+)[\"']\s*,\s*[\"']([^\"']+)[\"']")
_KEYWORD_SPLIT = re.compile(r"[\s;；]+")
_FACTS_HEADING = "基本案情"
_KEYWORDS_HEADING = "关键词"


class SppGuidingCaseSpider(scrapy.Spider):
    """Follow the guiding-case list pages to every case page and yield one item per case."""

    name = "spp_guiding_cases"

    def __init__(self, start_url: str | None = None, max_pages: str | int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.start_url = start_url or DEFAULT_START_URL
        self.allowed_domains = [urlparse(self.start_url).hostname or ""]
        self.max_pages = int(max_pages) if max_pages else None
        self._list_pages = 0

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Request the first list page."""
        # Never filtered as seen: a resumed or repeated crawl re-reads page 1 to find new cases.
        yield scrapy.Request(self.start_url, callback=self.parse, dont_filter=True)

    def parse(self, response: Response, **kwargs: Any) -> Iterator[scrapy.Request]:
        """Parse a list page: request each case page, then the next list page."""
        self._list_pages += 1
        for entry in response.css("ul.li_line li"):
            href = entry.css("a::attr(href)").get()
            if href:
                yield response.follow(href, callback=self.parse_case)
        next_url = _next_list_page(response)
        if next_url and (self.max_pages is None or self._list_pages < self.max_pages):
            yield scrapy.Request(next_url, callback=self.parse)

    def parse_case(self, response: Response) -> Iterator[CaseItem]:
        """Parse a case page (one case, or a batch of several) into items."""
        page_title = _clean(" ".join(response.css("div.detail_tit ::text").getall())) or _clean(
            response.css("title::text").get() or ""
        )
        paragraphs = [_clean(p.xpath("string(.)").get() or "") for p in _paragraph_nodes(response)]
        for case in split_cases([p for p in paragraphs if p], page_title):
            charges = parse_charges(case["title"]) or parse_charges("；".join(case["keywords"]))
            yield CaseItem(
                fact=case["fact"],
                meta={"accusation": sorted(charges)},
                url=response.url,
                title=case["title"],
                case_number=case["case_number"],
                keywords=case["keywords"],
            )


def split_cases(paragraphs: list[str], page_title: str) -> list[dict[str, Any]]:
    """Split the paragraphs of a case page into cases, each with title, number, keywords and facts.

    Args:
        paragraphs: The page's non-empty paragraphs, in order.
        page_title: The page heading, the title of a case whose own title line is missing.

    Returns:
        One dict per case (`title`, `case_number`, `keywords`, `fact`); a page without any
        `（检例第N号）` line is one case.
    """
    numbered = {i: match for i, text in enumerate(paragraphs) if (match := _NUMBER_LINE.match(text))}
    if not numbered:
        return [_read_case(paragraphs, page_title, "")]
    starts = sorted(numbered)
    # A case begins at its title line when its number stands alone on the line after that.
    begins = [
        i - 1 if i > 0 and not _title_part(numbered[i]) and _is_title_line(paragraphs[i - 1]) else i for i in starts
    ]
    cases = []
    for begin, start, end in zip(begins, starts, [*begins[1:], len(paragraphs)], strict=True):
        match = numbered[start]
        title = _title_part(match) or (paragraphs[begin] if begin < start else page_title)
        number = re.sub(r"\s", "", match.group("number") or match.group("number2"))
        cases.append(_read_case(paragraphs[start + 1 : end], title, number))
    return cases


def _read_case(paragraphs: list[str], title: str, case_number: str) -> dict[str, Any]:
    """Collect the sections of one case and pick out its keywords and facts."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for text in paragraphs:
        heading = _HEADING.match(text)
        if heading:
            current = sections.setdefault(heading.group(1).strip(), [])
            text = text[heading.end() :]
        if current is not None and text:
            current.append(text)
    keywords = [word for word in _KEYWORD_SPLIT.split(" ".join(sections.get(_KEYWORDS_HEADING, []))) if word]
    return {
        "title": title,
        "case_number": case_number,
        "keywords": keywords,
        "fact": "".join(sections.get(_FACTS_HEADING, [])),
    }


def _title_part(match: re.Match[str]) -> str:
    """Return the case name written on the number line itself, or "" when the number stands alone."""
    return (match.group("before") or match.group("after") or "").strip()


def _is_title_line(text: str) -> bool:
    """Whether a paragraph looks like a case name: not a section, short, ending in 案."""
    return not text.startswith("【") and len(text) <= 60 and text.endswith("案")


def _paragraph_nodes(response: Response) -> SelectorList:
    """Select the text paragraphs of a case page, from the article body when the page has one."""
    for selector in ("#fontzoom p", "div.TRS_Editor p", "p"):
        nodes = response.css(selector)
        if nodes:
            return nodes
    return SelectorList()


def _next_list_page(response: Response) -> str | None:
    """Return the next list page's URL: a "下一页" link, else the page after this one in the script pager."""
    link = response.xpath('//a[contains(normalize-space(.), "下一页")]/@href').get()
    if link and not link.startswith("javascript"):
        return response.urljoin(link)
    pager = _PAGER.search(response.text)
    if pager:
        pages, current, stem, ext = int(pager.group(1)), int(pager.group(2)), pager.group(3), pager.group(4)
        if current + 1 < pages:
            return response.urljoin(f"{stem}_{current + 1}.{ext}")
    return None


def _clean(text: str) -> str:
    """Collapse runs of whitespace (non-breaking and ideographic spaces included) to one space."""
    return re.sub(r"\s+", " ", text).strip()
