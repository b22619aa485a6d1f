"""Scrapy items of the zhihu domain: one `QuestionItem` per question with its answers nested, and hot-list entries.

A question is yielded once, after its answer pages have been followed to the end, so that each JSONL row
of a crawl is a complete record the formatter, `pixiu zhihu references` and `pixiu zhihu pairs` read
directly. Serialised, a question row looks like::

    {"question_id": "19550225", "title": "…", "detail": "…", "url": "https://www.zhihu.com/question/19550225",
     "answer_count": 45, "complete": true,
     "answers": [{"answer_id": "1", "author": "…", "text": "…", "voteup_count": 12, "comment_count": 3,
                  "created_time": 1700000000}, …]}

`pixiu zhihu references` adds `summary` (the reference) and `reference` ("user", "teacher" or "silver").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AnswerItem:
    """One answer to a question, as the answers API returns it."""

    answer_id: str
    """Zhihu's answer id, unique across the site."""
    author: str
    """The author's display name ("匿名用户" for anonymous answers)."""
    text: str
    """The answer body: HTML as the API returns it, plain text (one paragraph per line) after `CleanTextPipeline`."""
    voteup_count: int = 0
    """Up-votes (赞同) when crawled."""
    comment_count: int = 0
    """Comments when crawled."""
    created_time: int = 0
    """Unix time (seconds) the answer was first published."""


@dataclass
class QuestionItem:
    """A question with every answer read from its answer pages."""

    question_id: str
    """Zhihu's question id, as in https://www.zhihu.com/question/<question_id>."""
    title: str
    """The question's title."""
    detail: str = ""
    """The question's description: HTML when crawled, plain text after `CleanTextPipeline`; often empty."""
    url: str = ""
    """The question page."""
    answer_count: int | None = None
    """How many answers the site reported (paging totals); may differ from `len(answers)` after filtering."""
    complete: bool = True
    """False when the answer pages stopped early at an error page; the answers read until then are kept."""
    answers: list[AnswerItem] = field(default_factory=list)
    """The answers, in the order the API listed them."""


@dataclass
class HotQuestionItem:
    """One entry of the hot list (热榜), when the hot spider is not asked to follow answers."""

    question_id: str
    """Zhihu's question id."""
    title: str
    """The question's title."""
    rank: int
    """Position on the hot list, from 1."""
    heat: str = ""
    """The heat shown on the list, e.g. "1234 万热度"."""
    excerpt: str = ""
    """The short excerpt the list shows under the title."""
    url: str = ""
    """The question page."""
    answer_count: int | None = None
    """Answers the list reported, when it reports them."""
