"""Spider for Zhihu questions and all their answers, read from the public answers API.

For each question id: the question page (its `js-initialData` gives title and detail), then the answers
API from offset 0, following `paging.next` until `paging.is_end`. The question is yielded once, as one
`QuestionItem` with every answer nested, after its last page; the answers travel from page to page in
the request's `cb_kwargs`, so an interrupted crawl resumed from its job directory loses none.

* A question page that cannot be read (a login wall, a captcha, a network error) is not fatal: the
  title then comes from the answers API, and the detail stays empty. A 404/410 page ends the question.
* An error answer from the API (`{"error": {"code", "message"}}` with 4xx) ends the question: answers
  read so far are yielded with `complete: false`, and the site's message is raised so that it shows in
  the crawl summary. 429 and 5xx are retried first (see `settings.py`).

Arguments (`pixiu domain crawl zhihu --arg KEY=VALUE`):

* `question_ids`: comma-separated ids or question links, e.g. `19550225,https://www.zhihu.com/question/20000000`.
  Without it this spider crawls nothing (the hot-list spider runs instead).
* `base_url`: the site root, default `https://www.zhihu.com`; tests point it at a local server.
* `cookies`: your own browser cookies as one `name=value; name2=value2` string, sent with every request.
  They are kept in pending requests in the job directory; delete it when done. No login is bypassed.
* `user_agent`: the User-Agent header to send (default: `USER_AGENT` of `settings.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import scrapy

from pixiu_zhihu.items import QuestionItem
from pixiu_zhihu.site import (
    DEFAULT_BASE_URL,
    ERROR_STATUSES,
    ZhihuApiError,
    answer_from_api,
    answers_api_url,
    describe_error,
    question_from_initial_data,
    question_id_in,
    question_page_url,
    read_api_json,
    read_initial_data,
    rebase,
)

if TYPE_CHECKING:
    from scrapy.http import Response
    from twisted.python.failure import Failure


class ZhihuAnswersSpider(scrapy.Spider):
    """Crawl the given questions and every page of their answers; yield one QuestionItem per question."""

    name = "zhihu_answers"

    def __init__(
        self,
        question_ids: str | None = None,
        base_url: str | None = None,
        cookies: str | None = None,
        user_agent: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.allowed_domains = [urlparse(self.base_url).hostname or ""]
        self.question_ids = parse_question_ids(question_ids)
        self.cookies = parse_cookies(cookies)
        # Sent as a header, not as the deprecated `user_agent` spider attribute.
        self.headers = {"User-Agent": user_agent} if user_agent else {}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Request each question's page."""
        if not self.question_ids:
            self.logger.info("no question_ids given: nothing to crawl (pass --arg question_ids=123,456)")
        for question_id in self.question_ids:
            yield self.question_request(question_id)

    def question_request(self, question_id: str) -> scrapy.Request:
        """The request for a question's page; seen pages are skipped, so a resumed crawl starts no question twice."""
        return self._request(
            question_page_url(self.base_url, question_id),
            callback=self.parse_question,
            errback=self.question_page_failed,
            cb_kwargs={"question_id": question_id},
        )

    def parse_question(self, response: Response, question_id: str) -> Iterator[scrapy.Request]:
        """Read title and detail from the question page, then request the first answers page."""
        if response.status in (404, 410):
            raise ZhihuApiError(f"question {question_id}: {describe_error(response.status, None)}")
        entity = question_from_initial_data(read_initial_data(response), question_id)
        if entity is None:
            self.logger.warning(
                "question %s: the page (HTTP %s) holds no question data, perhaps a login wall; "
                "the title comes from the answers API and the detail stays empty",
                question_id,
                response.status,
            )
            entity = {}
        question = QuestionItem(
            question_id=question_id,
            title=str(entity.get("title") or ""),
            detail=str(entity.get("detail") or ""),
            url=question_page_url(self.base_url, question_id),
            answer_count=entity["answerCount"] if isinstance(entity.get("answerCount"), int) else None,
        )
        yield self.answers_request(question, answers_api_url(self.base_url, question_id))

    def question_page_failed(self, failure: Failure) -> Iterator[scrapy.Request]:
        """After a network failure on the question page, still read the answers (title from the API)."""
        question_id = failure.request.cb_kwargs["question_id"]  # type: ignore[attr-defined]  # set by scrapy
        self.logger.warning("question %s: page failed (%s); reading its answers anyway", question_id, failure.value)
        question = QuestionItem(question_id=question_id, title="", url=question_page_url(self.base_url, question_id))
        yield self.answers_request(question, answers_api_url(self.base_url, question_id))

    def answers_request(self, question: QuestionItem, url: str) -> scrapy.Request:
        """The request for one answers page, carrying the question and the answers read so far."""
        # Never filtered as seen: a page is only ever reached through its question's chain of pages.
        return self._request(
            url,
            callback=self.parse_answers,
            errback=self.answers_failed,
            cb_kwargs={"question": question},
            dont_filter=True,
        )

    def parse_answers(self, response: Response, question: QuestionItem) -> Iterator[Any]:
        """Add one page of answers; request the next page, or yield the question after the last one."""
        try:
            data = read_api_json(response)
        except ZhihuApiError as exc:
            yield from _partial(question)
            raise ZhihuApiError(f"question {question.question_id}: answers {exc}") from None
        page = [answer for answer in data.get("data") or [] if isinstance(answer, dict)]
        for answer in page:
            question.answers.append(answer_from_api(answer))
            asked = answer.get("question")
            if not question.title and isinstance(asked, dict):
                question.title = str(asked.get("title") or "")
        paging = data.get("paging")
        paging = paging if isinstance(paging, dict) else {}
        if question.answer_count is None and isinstance(paging.get("totals"), int):
            question.answer_count = paging["totals"]
        next_url = rebase(paging["next"], self.base_url) if paging.get("next") else None
        if paging.get("is_end", True) or not page or not next_url or next_url == response.url:
            yield question
            return
        yield self.answers_request(question, next_url)

    def answers_failed(self, failure: Failure) -> Iterator[QuestionItem]:
        """After a download failure (retries spent), keep the answers read so far."""
        request = failure.request  # type: ignore[attr-defined]  # scrapy sets it on download errors
        question = request.cb_kwargs["question"]
        self.logger.error("question %s: page %s failed: %s", question.question_id, request.url, failure.value)
        yield from _partial(question)

    def _request(self, url: str, **kwargs: Any) -> scrapy.Request:
        """A request with the user's cookies and headers; error statuses reach the callback to read their message."""
        return scrapy.Request(
            url,
            cookies=self.cookies,  # type: ignore[arg-type]  # str cookies are what it takes
            headers=self.headers,
            meta={"handle_httpstatus_list": list(ERROR_STATUSES)},
            **kwargs,
        )


def _partial(question: QuestionItem) -> Iterator[QuestionItem]:
    """Yield a question whose pages stopped early, marked incomplete, when it has any answers."""
    if question.answers:
        question.complete = False
        yield question


def parse_question_ids(value: str | None) -> list[str]:
    """Split `123,456` (ids or question links) into ids, without duplicates, keeping their order.

    Raises:
        ValueError: An entry is neither a number nor a question link.
    """
    ids: list[str] = []
    for part in filter(None, (p.strip() for p in (value or "").split(","))):
        question_id = part if part.isdigit() else question_id_in(part)
        if not question_id:
            raise ValueError(f"question_ids: {part!r} is not a question id; pass ids like 19550225,20000000")
        if question_id not in ids:
            ids.append(question_id)
    return ids


def parse_cookies(value: str | None) -> dict[str, str]:
    """Parse a browser's `name=value; name2=value2` cookie string into a dict.

    Raises:
        ValueError: A part has no `=`.
    """
    cookies: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (value or "").split(";"))):
        name, sep, val = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"cookies: {part!r} is not name=value; copy the Cookie header as 'a=1; b=2'")
        cookies[name.strip()] = val.strip()
    return cookies
