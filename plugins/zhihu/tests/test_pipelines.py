"""The zhihu pipelines: HTML -> text, and dropping empty, short and duplicate answers with a counted reason."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from scrapy import signals
from scrapy.exceptions import DropItem

from pixiu_zhihu.cleaning import html_to_text
from pixiu_zhihu.items import AnswerItem, HotQuestionItem, QuestionItem
from pixiu_zhihu.pipelines import MIN_ANSWER_CHARS, AnswerFilterPipeline, CleanTextPipeline

LONG = "把闹钟放到床的另一头，必须下床才能关掉。"


class FakeSignals:
    """Records what a pipeline sends, as scrapy's SignalManager would deliver it."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send_catch_log(self, signal: object, **kwargs: object) -> list:
        self.sent.append({"signal": signal, **kwargs})
        return []


def fake_crawler(state: dict | None = None) -> SimpleNamespace:
    return SimpleNamespace(signals=FakeSignals(), spider=SimpleNamespace(state=state if state is not None else {}))


def question(*answers: AnswerItem, detail: str = "") -> QuestionItem:
    return QuestionItem(question_id="1", title="如何早起？", detail=detail, answers=list(answers))


def test_html_to_text_keeps_paragraphs_and_drops_images_and_scripts() -> None:
    html = (
        "<p>关键是<b>早睡</b>：晚上十一点前放下手机。</p><figure><noscript><img src='a.jpg'/></noscript>"
        "<img src='a.jpg'/><figcaption>我的作息表</figcaption></figure><p>坚持两周<br/>就习惯了。</p>"
        "<script>track()</script><style>p{}</style><ul><li>准备衣服</li><li>喝水</li></ul>&nbsp;<!-- c -->尾声\u200b"
    )
    assert html_to_text(html) == "关键是早睡：晚上十一点前放下手机。\n坚持两周\n就习惯了。\n准备衣服\n喝水\n尾声"
    assert html_to_text("<figure><img src='b.jpg'/></figure>") == ""
    assert html_to_text("") == "" and html_to_text("  <!-- only a comment -->") == ""
    assert html_to_text("纯文本，  没有标签") == "纯文本， 没有标签"


def test_clean_pipeline_cleans_detail_and_answers_in_place() -> None:
    item = question(AnswerItem("1", "a", f"<p>{LONG}</p><p>第二段。</p>"), detail="<p>问题<b>描述</b></p>")
    assert CleanTextPipeline().process_item(item) is item
    assert item.detail == "问题描述" and item.answers[0].text == LONG + "\n第二段。"
    hot = HotQuestionItem(question_id="1", title="t", rank=1, excerpt="<p>不动</p>")
    assert CleanTextPipeline().process_item(hot) is hot and hot.excerpt == "<p>不动</p>"


def test_filter_drops_empty_short_and_duplicate_answers_and_reports_each() -> None:
    crawler = fake_crawler()
    pipeline = AnswerFilterPipeline.from_crawler(crawler)
    item = question(
        AnswerItem("1", "a", LONG),
        AnswerItem("2", "b", "谢邀，同问。"),
        AnswerItem("3", "c", ""),
        AnswerItem("1", "a", LONG),
        AnswerItem("4", "d", LONG + "另外，早餐要好吃。"),
    )
    assert pipeline.process_item(item) is item
    assert [a.answer_id for a in item.answers] == ["1", "4"]
    assert [(s["signal"], s["item"].answer_id, str(s["exception"])) for s in crawler.signals.sent] == [
        (signals.item_dropped, "2", f"answer too short: fewer than {MIN_ANSWER_CHARS} characters"),
        (signals.item_dropped, "3", "empty answer: no text once images and markup are removed"),
        (signals.item_dropped, "1", "duplicate answer: already crawled"),
    ]
    assert all(isinstance(s["exception"], DropItem) and s["spider"] is crawler.spider for s in crawler.signals.sent)


def test_question_left_without_answers_is_dropped() -> None:
    pipeline = AnswerFilterPipeline()
    pipeline.process_item(question(AnswerItem("1", "a", LONG)))
    with pytest.raises(DropItem, match="question without usable answers"):
        pipeline.process_item(question(AnswerItem("1", "a", LONG), AnswerItem("2", "b", "mark")))


def test_other_items_pass() -> None:
    hot = HotQuestionItem(question_id="1", title="t", rank=1)
    assert AnswerFilterPipeline().process_item(hot) is hot


def test_seen_ids_live_in_the_persisted_spider_state() -> None:
    state: dict = {}
    AnswerFilterPipeline.from_crawler(fake_crawler(state)).process_item(question(AnswerItem("1", "a", LONG)))
    assert state["seen_answer_ids"] == {"1"}
    with pytest.raises(DropItem):  # a resumed crawl starts from the same state
        AnswerFilterPipeline.from_crawler(fake_crawler(state)).process_item(question(AnswerItem("1", "a", LONG)))
