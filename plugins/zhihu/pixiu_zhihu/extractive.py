"""Extractive "silver" summaries: the answer sentences that carry the most TextRank keyword weight.

Used when neither the user nor a teacher model gave a reference. Such summaries are copied from the
answers, so a model trained on them learns to extract, not to abstract; `pixiu zhihu references` marks
them `"reference": "silver"` so that they can be told apart and replaced later.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pixiu_zhihu.formatter import top_answers

MAX_SILVER_CHARS = 30
"""Length of a silver summary in characters; the first sentence chosen is cut to it when longer."""
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;]*")
_TRAILING = "。！？!?；;，,、 "


def extractive_summary(record: dict[str, Any], *, top_k: int = 3, max_chars: int = MAX_SILVER_CHARS) -> str:
    """Pick the sentences of a question's top answers that best cover its keywords, within `max_chars`.

    Keywords and weights come from jieba's TextRank over the `top_k` most up-voted answers (TF-IDF when
    TextRank finds none). A sentence scores the summed weight of the keywords it contains, discounted by its
    answer's vote rank. The best sentence is always taken, then others holding a keyword while they fit;
    they are joined with "；" in the order the answers are ranked.

    Args:
        record: A Zhihu question record with `answers`.
        top_k: How many of the most up-voted answers to draw from.
        max_chars: Length limit of the summary.

    Returns:
        The summary; "" when the answers hold no text.
    """
    sentences = [
        (rank, position, sentence.strip(_TRAILING))
        for rank, text in enumerate(top_answers(record, top_k))
        for position, sentence in enumerate(_SENTENCE.findall(text))
        if sentence.strip(_TRAILING)
    ]
    if not sentences:
        return ""
    weights = _keyword_weights("\n".join(s for _, _, s in sentences))
    scored = sorted(
        ((sum(w for word, w in weights.items() if word in s[2]) / (1 + 0.5 * s[0]), s) for s in sentences),
        key=lambda pair: (-pair[0], pair[1][:2]),
    )
    chosen = [scored[0][1]]
    for score, candidate in scored[1:]:
        if score > 0 and sum(len(s[2]) + 1 for s in chosen) + len(candidate[2]) <= max_chars:
            chosen.append(candidate)
    summary = "；".join(s[2] for s in sorted(chosen))
    return summary if len(summary) <= max_chars else summary[: max_chars - 1] + "…"


def _keyword_weights(text: str) -> dict[str, float]:
    """Keyword -> weight by jieba TextRank, or TF-IDF when TextRank finds none (e.g. very short text)."""
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)
    pairs = jieba.analyse.textrank(text, topK=20, withWeight=True) or jieba.analyse.extract_tags(
        text, topK=20, withWeight=True
    )
    return dict(pairs)
