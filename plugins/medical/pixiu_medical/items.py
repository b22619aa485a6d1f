"""Scrapy items of the medical domain, shaped so that `pixiu_medical.kg.triples_from_disease` reads them directly."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DiseaseItem:
    """One disease of an online medical encyclopedia, gathered from its overview page and sub-pages."""

    name: str
    """The disease's name, from the overview page's title, e.g. "感冒"."""
    url: str
    """The overview page (简介) the item starts from; sub-pages share its id."""
    disease_id: str = ""
    """The site's id of the disease (the number in its URLs), "" when unknown."""
    overview: str = ""
    """The introduction (简介) text."""
    causes: list[str] = field(default_factory=list)
    """Causes (病因), as short phrases."""
    symptoms: list[str] = field(default_factory=list)
    """Symptoms (症状)."""
    examinations: list[str] = field(default_factory=list)
    """Examinations (检查)."""
    treatments: list[str] = field(default_factory=list)
    """Ways of treatment (治疗方式)."""
    drugs: list[str] = field(default_factory=list)
    """Drugs (常用药品 / 用药), by generic name where the page gives one."""
    complications: list[str] = field(default_factory=list)
    """Complications (并发症): other diseases."""
    departments: list[str] = field(default_factory=list)
    """Departments to visit (就诊科室)."""
    category: list[str] = field(default_factory=list)
    """The site's breadcrumb categories, e.g. ["内科", "呼吸内科"]."""
    source: str = "寻医问药网 疾病百科 (jib.xywy.com)"
    """Human-readable name of the publication."""
