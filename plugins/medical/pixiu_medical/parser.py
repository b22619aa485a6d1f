"""Model text (or a gold answer) -> the answer's clean text and the medical facts it states.

Gold answers generated from the knowledge graph list their facts after a full-width colon, joined by 、
("感冒的常见症状有：发热、咳嗽。"); those items are the facts knowledge recall checks. A teacher-written
answer ends with a key-point line (`要点：发热、咳嗽。`), which then is the only list read, so colons in the
teacher's prose add nothing. A free-text answer without any list (Huatuo's own data, doctor replies) is
represented by its key terms instead: the top jieba TF-IDF nouns, generic words of medical prose left out.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass

from pixiu_medical.kg import normalize_term
from pixiu_medical.safety import DISCLAIMER

KEY_POINTS = "要点："
"""Opens the line listing the facts of a teacher-written answer."""
_KEY_POINTS = re.compile(r"要点[：:]\s*([^。；;：:！？!?\n]+)")
_LIST = re.compile(r"[：:]\s*([^。；;：:！？!?\n]+)")
"""The text after a colon up to the end of its clause: a list of facts."""
_ITEM_SEPARATOR = re.compile(r"[、，,]")
_SPECIAL = re.compile(r"<\|[^|>]*\|>")
"""Chat-template tokens such as <|im_end|> that generation may leave in the text."""
MAX_FACT_CHARS = 20
"""A longer list item is prose, not a fact term."""
KEY_TERMS = 5
"""Key terms taken from a free-text answer."""
_KEY_POS = ("n", "nz", "vn", "nr", "nrt", "ns", "nt", "an", "i", "l")
"""jieba part-of-speech tags of key terms: nouns of all kinds, noun-like verbs and adjectives, idioms."""
_GENERIC = frozenset(
    "患者 治疗 可能 建议 需要 进行 医生 症状 疾病 情况 出现 引起 导致 常见 一般 注意 及时 检查 病情 医院 主要 表现 "
    "包括 这种 如果 可以 通常 应该 以及 因此 同时 相关 方面 问题 时候 感谢 咨询 帮助 希望".split()
)
"""Words too general to count as a fact of a free-text answer."""


@dataclass(frozen=True)
class MedicalAnswer:
    """What the metrics compare: the answer text and the fact terms it states."""

    text: str
    """The answer with template tokens and the serving disclaimer removed, whitespace collapsed."""
    facts: tuple[str, ...]
    """Fact terms: items of the key-point line or else of the colon lists, else key terms; distinct, in order."""


def parse_answer(text: str) -> MedicalAnswer:
    """Parse model output or a gold answer into its clean text and fact terms.

    Args:
        text: Model output or a gold answer.

    Returns:
        The clean text and its facts; empty text gives no facts.
    """
    clean = _SPECIAL.sub(" ", text or "").replace(DISCLAIMER, "")
    clean = " ".join(clean.split())
    facts = list_facts(clean) or key_terms(clean)
    return MedicalAnswer(clean, tuple(dict.fromkeys(facts)))


def list_facts(text: str) -> list[str]:
    """The items of the key-point line, else of every colon list, as terms ("症状有：发热、咳嗽。" -> 发热, 咳嗽)."""
    segments = _KEY_POINTS.findall(text) or _LIST.findall(text)
    items = (normalize_term(item) for segment in segments for item in _ITEM_SEPARATOR.split(segment))
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
