"""Spider for Zhihu's hot list (热榜): today's hot questions, optionally with all their answers.

Reads the hot-list API (`/api/v3/feed/topstory/hot-lists/total?limit=50`) or, given `hot_url` pointing
at it, the public billboard page (`/billboard`, its `js-initialData`). It yields one `HotQuestionItem`
per hot question; with `follow_answers=1` it crawls each question as `ZhihuAnswersSpider` does and
yields `QuestionItem`s instead, ready for `pixiu zhihu references`.

It subclasses `ZhihuAnswersSpider` to reuse its question and answer-page callbacks, which must be
methods of the running spider for requests to survive in a resumable job directory.

Arguments (`--arg KEY=VALUE`), besides the answers spider's `base_url`, `cookies` and `user_agent`:

* `hot_url`: the hot list, absolute or a path on `base_url` (default the API above).
* `follow_answers`: `1` to crawl each hot question's answers (default `0`).
* `hot`: `1` or `0` to crawl the hot list or not. By default it is crawled unless `question_ids` is
  given, so `pixiu domain crawl zhihu --arg question_ids=…` crawls just those questions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import scrapy

from pixiu_zhihu.items import HotQuestionItem
from pixiu_zhihu.site import HOT_LIST_PATH, hot_list_entries
from pixiu_zhihu.spiders.answers import ZhihuAnswersSpider

if TYPE_CHECKING:
    from scrapy.http import Response

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


class ZhihuHotSpider(ZhihuAnswersSpider):
    """Crawl the hot list; yield its questions, or (follow_answers=1) each question with its answers."""

    name = "zhihu_hot"

    def __init__(
        self, hot_url: str | None = None, follow_answers: str | None = None, hot: str | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        hot_url = hot_url or HOT_LIST_PATH
        self.hot_url = self.base_url + hot_url if hot_url.startswith("/") else hot_url
        self.follow_answers = parse_flag(follow_answers, "follow_answers")
        self.enabled = parse_flag(hot, "hot") if hot is not None else not self.question_ids

    async def start(self) -> AsyncIterator[scrapy.Request]:
        """Request the hot list, unless this crawl is only for given question ids."""
        if not self.enabled:
            self.logger.info("question_ids given: hot list skipped (pass --arg hot=1 to crawl it as well)")
            return
        # Never filtered as seen: every run re-reads the list, which changes through the day.
        yield self._request(self.hot_url, callback=self.parse_hot, dont_filter=True)

    def parse_hot(self, response: Response) -> Iterator[HotQuestionItem | scrapy.Request]:
        """Yield each hot question, or a request for its page when following answers."""
        for entry in hot_list_entries(response, self.base_url):
            yield self.question_request(entry.question_id) if self.follow_answers else entry


def parse_flag(value: str | None, name: str) -> bool:
    """Read a 0/1 (true/false, yes/no) spider argument.

    Raises:
        ValueError: The value is none of those.
    """
    text = (value or "").strip().lower()
    if text not in _TRUE + _FALSE:
        raise ValueError(f"{name}: {value!r} is not a flag; pass {name}=1 or {name}=0")
    return text in _TRUE
