"""The zhihu vertical's page of the web app (`register_web_pages`): chat with Zhihu's hot list (和知乎热榜聊天).

`GET api/hot` lists the questions of the last hot-list crawl (`pixiu domain crawl zhihu`, which appends to
PIXIU_HOME/data/zhihu/raw.jsonl), or of the bundled sample when nothing was crawled, each with the chat messages
asking for the summary of its answers exactly as training writes them (`summary_messages`). The page sends those to
the server's own `/v1/chat/completions` (model "zhihu" by default) and then chats about the question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from pixiu import BadRecord, WebPage
from pixiu.paths import pixiu_home
from pixiu.records import iter_raw_records
from pixiu_zhihu.formatter import summary_messages, top_answers

STATIC = Path(__file__).resolve().parent / "static"
"""The page's files, shipped as package data."""
SAMPLE = Path(__file__).resolve().parent / "sample_data" / "zhihu_synthetic.jsonl"
"""Shown when nothing was crawled: the bundled synthetic questions."""
MAX_QUESTIONS = 50
"""The hot list has 50 entries; a crawled file of many days is cut to its last 50 distinct questions."""
MAX_SKIPPED = 5
"""Unreadable records named in the answer; the rest are only counted."""

router = APIRouter()


def crawled_file() -> Path:
    """Where `pixiu domain crawl zhihu` appends by default."""
    return pixiu_home() / "data" / "zhihu" / "raw.jsonl"


class HotQuestion(BaseModel):
    """One question of the hot list."""

    id: str
    """Zhihu's question id."""
    title: str
    """The question."""
    rank: int | None
    """Its place on the hot list, from 1; None for a question crawled on its own or a sample one."""
    heat: str
    """The heat the list shows, e.g. "1234 万热度"; empty when unknown."""
    excerpt: str
    """The list's excerpt, or the question's detail."""
    answers: list[str]
    """The texts of its most up-voted answers (as many as the prompt shows), the most up-voted first."""
    messages: list[dict[str, str]] | None
    """The chat messages asking for the summary of its answers; None when no answer was crawled."""


class HotList(BaseModel):
    """`GET api/hot`: the questions to chat about, and where they come from."""

    source: Literal["crawl", "sample"]
    """"crawl" when read from the crawled file, "sample" when it is missing or holds no question."""
    file: str
    """The file read."""
    questions: list[HotQuestion]
    """The questions, by hot-list rank (else in the order crawled)."""
    skipped: list[str]
    """`file:line: reason` of the first records that could not be read (all are counted in `skipped_count`)."""
    skipped_count: int
    """How many records could not be read."""


@router.get("/hot")
def hot_list() -> HotList:
    """Today's hot list (the last crawl), or the bundled sample questions when nothing was crawled."""
    crawled = crawled_file()
    if crawled.is_file():
        found = read_questions(crawled)
        if found.questions:
            return found
    return read_questions(SAMPLE, source="sample")


def read_questions(path: Path, source: Literal["crawl", "sample"] = "crawl") -> HotList:
    """The distinct questions of `path` (the last record of each wins, as the newest crawl), at most 50."""
    latest: dict[str, HotQuestion] = {}
    skipped: list[str] = []
    for where, _, record in iter_raw_records(path):
        try:
            question = _question(record)
        except BadRecord as exc:
            skipped.append(f"{where}: {exc}")
            continue
        latest.pop(question.id, None)
        latest[question.id] = question
    questions = list(latest.values())[-MAX_QUESTIONS:]
    questions.sort(key=lambda q: q.rank if q.rank is not None else MAX_QUESTIONS + 1)  # stable: crawl order kept
    return HotList(
        source=source,
        file=str(path),
        questions=questions,
        skipped=skipped[:MAX_SKIPPED],
        skipped_count=len(skipped),
    )


def _question(record: Any) -> HotQuestion:
    """A crawled record (a hot-list entry, or a question with its answers) as a `HotQuestion`, or BadRecord."""
    if isinstance(record, BadRecord):
        raise record
    if not isinstance(record, dict) or not str(record.get("title") or "").strip():
        raise BadRecord("expected a JSON object with a `title` (a zhihu hot-list entry or question)")
    has_answers = bool(record.get("answers"))
    rank = record.get("rank")
    return HotQuestion(
        id=str(record.get("question_id") or record["title"]),
        title=record["title"].strip(),
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) else None,
        heat=str(record.get("heat") or ""),
        excerpt=str(record.get("excerpt") or record.get("detail") or ""),
        answers=top_answers(record, 3) if has_answers else [],
        messages=summary_messages(record) if has_answers else None,
    )


PAGE = WebPage(name="zhihu", title="知乎热榜聊天", static=STATIC, router=router, lang="zh")
"""The hot-list chat, at /plugins/zhihu/."""
