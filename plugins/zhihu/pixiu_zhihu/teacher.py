"""Reference summaries from a teacher model: zhihu's system prompt and token budget for `pixiu.teacher.Teacher`."""

from __future__ import annotations

from typing import Any

from pixiu.teacher import Teacher, TeacherCache

SYSTEM_PROMPT = (
    "你是知乎问答总结助手。读完问题和高赞回答，用一句不超过30个字的中文概括回答的共同要点。只输出这句话，不要解释。"
)
MAX_TOKENS = 96
"""Enough for 30 Chinese characters on most tokenizers, with room to spare."""
RETRY_STATUSES = (429, 502, 503, 504)
"""Statuses retried: rate limits and an overloaded or restarting server; a 500 fails at once."""


def summary_teacher(url: str, model: str, cache: TeacherCache, **options: Any) -> Teacher:
    """A teacher that summarises a question and its answers in one sentence; `options` go to `Teacher`."""
    return Teacher(
        url, model, cache, system_prompt=SYSTEM_PROMPT, max_tokens=MAX_TOKENS, retry_statuses=RETRY_STATUSES, **options
    )
