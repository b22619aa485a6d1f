"""Zhihu's public pages and JSON endpoints: URLs, and readers for what they return.

Layouts read (as the site served them logged out; no login, signature or captcha is bypassed):

* Question page `https://www.zhihu.com/question/<qid>`: a `<script id="js-initialData" type="text/json">`
  holding `initialState.entities.questions[<qid>]` with `title`, `detail` (HTML) and `answerCount`.
* Answers API `/api/v4/questions/<qid>/answers?include=content,voteup_count,comment_count,created_time
  &limit=20&offset=0`: `{"data": [answer…], "paging": {"is_end", "next", "totals"}}`; an answer has `id`,
  `content` (HTML), `voteup_count`, `comment_count`, `created_time`, `author.name` and `question.title`.
* Hot list API `/api/v3/feed/topstory/hot-lists/total?limit=50`: `{"data": [{"target": {"id", "title",
  "excerpt", "answer_count", "type": "question"}, "detail_text": "1234 万热度"}, …]}`.
* Billboard page `https://www.zhihu.com/billboard` (the public hot list): initial data with
  `initialState.topstory.hotList`, entries `{"target": {"titleArea": {"text"}, "excerptArea": {"text"},
  "metricsArea": {"text"}, "link": {"url": ".../question/<qid>"}}}`.
* Errors: a JSON body `{"error": {"code": 10003, "message": "…"}}`, with a 4xx status (or sometimes 200).

Links the API returns (`paging.next`, `api.zhihu.com/questions/<qid>`) are rebased onto the spider's
`base_url`, so one setting moves the whole crawl, e.g. to a local test server.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from pixiu_zhihu.items import AnswerItem, HotQuestionItem

if TYPE_CHECKING:
    from scrapy.http import Response

DEFAULT_BASE_URL = "https://www.zhihu.com"
ANSWER_FIELDS = "content,voteup_count,comment_count,created_time"
PAGE_SIZE = 20
"""Answers per API page; the site serves at most 20."""
HOT_LIST_PATH = "/api/v3/feed/topstory/hot-lists/total?limit=50"
ERROR_STATUSES = (400, 401, 403, 404, 410)
"""Statuses whose body is a Zhihu error message worth reading (retries are for 429 and 5xx)."""

_QUESTION_IN_URL = re.compile(r"/questions?/(\d+)")


class ZhihuApiError(Exception):
    """A page or API answer that holds an error message, or is not the JSON/HTML expected."""


def question_page_url(base_url: str, question_id: str) -> str:
    """The question's HTML page on `base_url`."""
    return f"{base_url}/question/{question_id}"


def answers_api_url(base_url: str, question_id: str, offset: int = 0, limit: int = PAGE_SIZE) -> str:
    """The answers API page of a question starting at `offset`."""
    query = urlencode({"include": ANSWER_FIELDS, "limit": limit, "offset": offset}, safe=",")
    return f"{base_url}/api/v4/questions/{question_id}/answers?{query}"


def rebase(url: str, base_url: str) -> str:
    """Move an absolute link the site returned (e.g. `paging.next`) onto `base_url`, keeping path and query."""
    parts = urlsplit(url)
    return f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def question_id_in(url: str) -> str | None:
    """The question id in a question link (`/question/<qid>` or the API's `/questions/<qid>`), if any."""
    match = _QUESTION_IN_URL.search(url or "")
    return match.group(1) if match else None


def read_api_json(response: Response) -> dict[str, Any]:
    """Decode an API answer; raise ZhihuApiError with the site's own message for an error answer.

    Raises:
        ZhihuApiError: The status is an error, the body holds `{"error": {...}}`, or it is not a JSON object.
    """
    try:
        data = json.loads(getattr(response, "text", None) or "null")
    except ValueError:
        data = None
    if response.status >= 400 or (isinstance(data, dict) and "error" in data):
        raise ZhihuApiError(describe_error(response.status, data))
    if not isinstance(data, dict):
        raise ZhihuApiError(f"HTTP {response.status}: expected a JSON object, got {_preview(response.body)}")
    return data


def describe_error(status: int, data: Any) -> str:
    """One line for an error answer: status, Zhihu's error code and message, and a hint how to proceed."""
    error = data.get("error") if isinstance(data, dict) else None
    error = error if isinstance(error, dict) else {}
    code = f" (code {error['code']})" if "code" in error else ""
    message = f": {error['message']}" if error.get("message") else ""
    hint = {
        401: "the endpoint needs a login; pass your own cookies with --arg cookies='…'",
        403: "refused (login, signature or rate limit); slow down or pass your own cookies with --arg cookies='…'",
        404: "no such question or it was deleted",
        410: "no such question or it was deleted",
    }.get(status, "")
    return f"HTTP {status}{code}{message}" + (f"; {hint}" if hint else "")


def read_initial_data(response: Response) -> dict[str, Any] | None:
    """The page's `js-initialData` JSON (`initialState` inside), or None when the page has none."""
    raw = response.css("script#js-initialData::text").get() if _is_html(response) else None
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def question_from_initial_data(data: dict[str, Any] | None, question_id: str) -> dict[str, Any] | None:
    """The question entity of a question page (`title`, `detail`, `answerCount`), or None when missing."""
    questions = _dig(data, "initialState", "entities", "questions") or {}
    question = questions.get(str(question_id)) if isinstance(questions, dict) else None
    return question if isinstance(question, dict) and question.get("title") else None


def answer_from_api(answer: dict[str, Any]) -> AnswerItem:
    """An `AnswerItem` from one element of the answers API's `data` (text still HTML)."""
    author = answer.get("author")
    author = author if isinstance(author, dict) else {}
    return AnswerItem(
        answer_id=str(answer.get("id", "")),
        author=str(author.get("name") or ""),
        text=str(answer.get("content") or ""),
        voteup_count=_int(answer.get("voteup_count")),
        comment_count=_int(answer.get("comment_count")),
        created_time=_int(answer.get("created_time")),
    )


def hot_list_entries(response: Response, base_url: str) -> list[HotQuestionItem]:
    """The questions on a hot list: the hot-list API's JSON, or the billboard page's initial data.

    Entries that are not questions (articles, ads, live events) are skipped; ranks count questions only.

    Raises:
        ZhihuApiError: The answer is an error, or neither layout is found.
    """
    if _is_html(response):
        if response.status >= 400:
            raise ZhihuApiError(describe_error(response.status, None))
        entries = _dig(read_initial_data(response), "initialState", "topstory", "hotList")
        if not isinstance(entries, list):
            raise ZhihuApiError(f"HTTP {response.status}: page has no hot list in its js-initialData")
        rows = [_billboard_entry(entry) for entry in entries]
    else:
        data = read_api_json(response)
        rows = [_api_entry(entry) for entry in data.get("data") or []]
    items: list[HotQuestionItem] = []
    for row in rows:
        if row and row["question_id"]:
            items.append(
                HotQuestionItem(rank=len(items) + 1, url=question_page_url(base_url, row["question_id"]), **row)
            )
    return items


def _api_entry(entry: Any) -> dict[str, Any] | None:
    """Fields of one hot-list API entry, or None when it is not a question."""
    target = entry.get("target") if isinstance(entry, dict) else None
    if not isinstance(target, dict) or target.get("type", "question") != "question":
        return None
    question_id = str(target.get("id") or "") or question_id_in(str(target.get("url") or ""))
    return {
        "question_id": question_id or "",
        "title": str(target.get("title") or ""),
        "heat": str(entry.get("detail_text") or ""),
        "excerpt": str(target.get("excerpt") or ""),
        "answer_count": _int(target["answer_count"]) if "answer_count" in target else None,
    }


def _billboard_entry(entry: Any) -> dict[str, Any] | None:
    """Fields of one billboard entry, or None when it links to no question."""
    target = entry.get("target") if isinstance(entry, dict) else None
    if not isinstance(target, dict):
        return None
    question_id = question_id_in(str(_dig(target, "link", "url") or ""))
    return {
        "question_id": question_id or "",
        "title": str(_dig(target, "titleArea", "text") or ""),
        "heat": str(_dig(target, "metricsArea", "text") or ""),
        "excerpt": str(_dig(target, "excerptArea", "text") or ""),
        "answer_count": None,
    }


def _dig(data: Any, *keys: str) -> Any:
    """Follow nested dict keys; None as soon as one is missing."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _is_html(response: Response) -> bool:
    """Whether the response is an HTML page (it has selectors), not JSON or bytes."""
    content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
    return "html" in content_type or (getattr(response, "text", None) or "").lstrip()[:1] == "<"


def _int(value: Any) -> int:
    """An int from a JSON number or numeric string; 0 for anything else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _preview(body: bytes, limit: int = 60) -> str:
    """The start of a body for an error message."""
    text = body[:limit].decode("utf-8", "replace")
    return repr(text + ("…" if len(body) > limit else ""))
