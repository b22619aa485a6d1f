"""Scrapy items of the law domain, shaped so that `pixiu_law.formatter` reads them directly."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CaseItem:
    """One criminal case: its facts and charges in CAIL2018's layout, plus where it came from."""

    fact: str
    """The case facts (the 【基本案情】 section); empty when the page has none."""
    meta: dict[str, list[str]]
    """`{"accusation": [...]}`: canonical charge names (see `pixiu_law.charges`), possibly empty."""
    url: str
    """The page the case was read from."""
    title: str
    """The case name, e.g. "张某某等人诈骗案"; it names the charges by convention."""
    case_number: str = ""
    """The guiding-case number, e.g. "检例第67号", or "" when the page shows none."""
    keywords: list[str] = field(default_factory=list)
    """The 【关键词】 entries."""
    source: str = "最高人民检察院 检察机关指导性案例"
    """Human-readable name of the publication."""
