"""Item pipelines of the zhihu domain: answer HTML -> text, then drop empty, short and duplicate answers.

Answers are nested inside their question, so a dropped answer cannot be a dropped item the usual way.
Each one is reported through scrapy's `item_dropped` signal with a `DropItem` giving the reason; crawl
summaries (`pixiu.crawl`) and scrapy's stats count it exactly like a dropped item. A question left
without any answer is then dropped itself.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DropItem

from pixiu.crawl import seen_keys
from pixiu_zhihu.cleaning import html_to_text
from pixiu_zhihu.items import AnswerItem, QuestionItem

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

MIN_ANSWER_CHARS = 10
"""Shorter answers (谢邀, 同问, mark, 坐等大神) carry nothing worth summarising."""


class CleanTextPipeline:
    """Turn the HTML of a question's detail and of each answer into plain text, one paragraph per line."""

    def process_item(self, item: Any) -> Any:
        """Clean a QuestionItem's texts in place; other items pass unchanged."""
        if isinstance(item, QuestionItem):
            item.detail = html_to_text(item.detail)
            for answer in item.answers:
                answer.text = html_to_text(answer.text)
        return item


class AnswerFilterPipeline:
    """Drop empty, very short and already-crawled answers (by answer id), then questions left with none.

    With a job directory (resumable crawls) the answer ids seen are kept in the spider's persisted
    state, so a resumed crawl does not write an answer twice.
    """

    def __init__(self, crawler: Crawler | None = None):
        self.crawler = crawler
        self._seen: set[str] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> AnswerFilterPipeline:
        """Build the pipeline with the crawler, whose signals count drops and whose spider keeps state."""
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        """Keep a question's usable answers; raise DropItem when none is left. Other items pass unchanged."""
        if not isinstance(item, QuestionItem):
            return item
        kept = []
        for answer in item.answers:
            reason = self._drop_reason(answer)
            if reason:
                self._report_dropped(answer, reason)
            else:
                kept.append(answer)
        item.answers = kept
        if not kept:
            raise DropItem("question without usable answers: every answer was empty, too short or already crawled")
        return item

    def _drop_reason(self, answer: AnswerItem) -> str | None:
        """Why an answer is dropped, or None to keep it (and remember its id)."""
        if not answer.text.strip():
            return "empty answer: no text once images and markup are removed"
        if len(answer.text) < MIN_ANSWER_CHARS:
            return f"answer too short: fewer than {MIN_ANSWER_CHARS} characters"
        seen = self._seen_ids()
        if answer.answer_id in seen:
            return "duplicate answer: already crawled"
        seen.add(answer.answer_id)
        return None

    def _report_dropped(self, answer: AnswerItem, reason: str) -> None:
        """Announce a dropped answer as scrapy announces a dropped item, so summaries and stats count it."""
        logger.debug("dropped answer %s: %s", answer.answer_id, reason)
        if self.crawler is not None:
            self.crawler.signals.send_catch_log(
                signal=signals.item_dropped,
                item=answer,
                response=None,
                spider=self.crawler.spider,
                exception=DropItem(reason),
            )

    def _seen_ids(self) -> set[str]:
        """The answer ids seen, kept in the spider's persisted state once that exists (from spider start)."""
        if self._seen is None:
            self._seen = seen_keys(self.crawler, "seen_answer_ids")
        return self._seen
