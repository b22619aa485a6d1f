"""Model text (or a gold answer) -> the answer's clean text; a gold answer without structured facts -> its facts.

The reference of a record built from the knowledge graph carries its facts (see `pixiu_medical.formatter`).
For other gold answers the facts are read from the text: answers listing facts after a full-width colon
("感冒的常见症状有：发热、咳嗽。") give those items; a free-text answer without any list (Huatuo's own data,
doctor replies) is represented by its key terms: the top jieba TF-IDF nouns, generic words of medical prose
left out.
"""

from __future__ import annotations

import logging
import re
import unicodedata

from pixiu_medical.kg import normalize_term

_LIST = re.compile(r"[：:]\s*([^。；;：:！？!?\n]+)")
"""The text after a colon up to the end of its clause: a list of facts."""
_ITEM_SEPARATOR = re.compile(r"[、，,]")
MAX_FACT_CHARS = 20
"""A longer list item is prose, not a fact term."""
KEY_TERMS = 5
"""Key terms taken from a free-text answer."""
_KEY_POS = ("n", "nz", "vn", "nr", "nrt", "ns", "nt", "an", "i", "l")
"""jieba part-of-speech tags of key terms: nouns of all kinds, noun-like verbs and adjectives, idioms."""
_GENERIC = frozenset(
    [
        "患者",
        "治疗",
        "可能",
        "建议",
        "需要",
        "进行",
        "医生",
        "症状",
        "疾病",
        "情况",
        "出现",
        "引起",
        "导致",
        "常见",
        "一般",
        "注意",
        "及时",
        "检查",
        "病情",
        "医院",
        "主要",
        "表现",
        "包括",
        "这种",
        "如果",
        "可以",
        "通常",
        "应该",
        "以及",
        "因此",
        "同时",
        "相关",
        "方面",
        "问题",
        "时候",
        "感谢",
        "咨询",
        "帮助",
        "希望",
    ]
)
"""Words too general to count as a fact of a free-text answer."""


def parse_answer(text: str) -> str:
    """The answer as the metrics compare it: whitespace collapsed ("" for empty text).

    pixiu hands the parser model text with chat tokens stripped and never rewritten by `process_response`,
    so there is no template token or serving disclaimer to remove.
    """
    return " ".join((text or "").split())


def answer_facts(text: str) -> list[str]:
    """The fact terms a gold answer states: the items of its colon lists, else its key terms; distinct, in order."""
    return list(dict.fromkeys(list_facts(text) or key_terms(text)))


def list_facts(text: str) -> list[str]:
    """The items of every colon list, as terms ("症状有：发热、咳嗽。" -> 发热, 咳嗽)."""
    items = (normalize_term(item) for segment in _LIST.findall(text) for item in _ITEM_SEPARATOR.split(segment))
    return [item for item in items if 0 < len(item) <= MAX_FACT_CHARS]


def key_terms(text: str, top_k: int = KEY_TERMS) -> list[str]:
    """The `top_k` jieba TF-IDF keywords of `text` that are nouns (by jieba's tags), 2+ characters, not generic."""
    if not text.strip():
        return []
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict…" on first use
    words = jieba.analyse.extract_tags(unicodedata.normalize("NFKC", text), topK=top_k * 3, allowPOS=_KEY_POS)
    kept = [w for w in words if len(w) >= 2 and w not in _GENERIC and w[-1] not in "和及与的"]
    return kept[:top_k]
