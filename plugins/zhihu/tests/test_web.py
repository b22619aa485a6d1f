"""The zhihu vertical's hot-list chat (`register_web_pages`): its list, served, and driven in headless Chromium.

The tiny random adapter proves the plumbing (list, summary prompt, answer, follow-up), not the quality of a summary."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pixiu.files import read_jsonl
from pixiu.plugins import get_web_pages
from pixiu.testing.web import browser, not_blank, open_page, random_adapter, served  # noqa: F401  (browser: a fixture)
from pixiu_zhihu.formatter import summary_messages
from pixiu_zhihu.web import MAX_QUESTIONS, SAMPLE, crawled_file, hot_list

BUSY = {"error": {"message": "the queue is full", "type": "rate_limit_error", "code": "queue_full"}}
ANSWERED = {
    "question_id": "42",
    "title": "如何评价今天的热点？",
    "detail": "",
    "answers": [{"text": "低赞回答。", "voteup_count": 1}, {"text": "高赞回答说得好。", "voteup_count": 900}],
}


def test_without_a_crawl_the_sample_questions_are_listed_with_their_summary_prompts() -> None:
    listed = hot_list()
    sample = read_jsonl(SAMPLE)
    assert listed.source == "sample" and listed.file == str(SAMPLE) and listed.skipped_count == 0
    assert len(sample) > MAX_QUESTIONS and [q.id for q in listed.questions] == [r["question_id"] for r in sample[-50:]]
    assert listed.questions[0].messages == summary_messages(sample[-50])


def test_the_last_crawl_is_listed_by_rank_each_question_once() -> None:
    rows = [
        {"question_id": "7", "title": "旧的问题", "rank": 1, "heat": "10 万热度"},
        {"question_id": "9", "title": "第二名", "rank": 2, "heat": "20 万热度", "excerpt": "摘要"},
        {**ANSWERED, "rank": 1},
        {"question_id": "7", "title": "旧的问题", "rank": 3, "heat": "5 万热度"},  # the newer crawl wins
    ]
    crawled_file().parent.mkdir(parents=True)
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    crawled_file().write_text("\n".join([*lines[:2], "{not json", '{"rank": 4}', *lines[2:]]) + "\n", encoding="utf-8")
    listed = hot_list()
    assert listed.source == "crawl" and [q.id for q in listed.questions] == ["42", "9", "7"]
    assert [q.heat for q in listed.questions] == ["", "20 万热度", "5 万热度"]
    assert listed.questions[0].answers == ["高赞回答说得好。", "低赞回答。"]
    assert listed.questions[0].messages == summary_messages(ANSWERED)
    assert listed.questions[1].messages is None and listed.questions[1].excerpt == "摘要"
    assert listed.skipped_count == 2 and listed.skipped[0].startswith(f"{crawled_file()}:3: not valid JSON")


@pytest.fixture
def url(zhihu_entry_point, tiny_model_dir: Path, tmp_path: Path):
    """The server with a random adapter served as "zhihu", the zhihu plugin loaded from its entry point."""
    with served(tiny_model_dir, {"zhihu": random_adapter(tiny_model_dir, tmp_path / "zhihu")}, max_tokens=128) as url:
        yield url


def test_the_page_lists_questions_shows_a_summary_and_chats(browser, url: str) -> None:  # noqa: F811
    assert get_web_pages()["zhihu"].lang == "zh"
    assert {"name": "zhihu", "title": "知乎热榜聊天", "url": "plugins/zhihu/", "lang": "zh"} in httpx.get(
        f"{url}/v1/pages"
    ).json()["data"]
    first = read_jsonl(SAMPLE)[-MAX_QUESTIONS]
    sent: list[dict] = []
    page = open_page(browser, f"{url}/plugins/zhihu/")
    page.on("request", lambda r: sent.append(r.post_data_json) if r.url.endswith("/v1/chat/completions") else None)
    page.wait_for_selector("#model:not([disabled])")
    assert page.input_value("#model") == "zhihu"
    page.click(f"#questions button:has-text('{first['title']}')")
    page.wait_for_selector("#log .msg.assistant[data-state=done]")
    assert sent[0]["model"] == "zhihu" and sent[0]["messages"] == summary_messages(first)
    summary = page.text_content("#log .msg.assistant .text")
    assert page.text_content("#title") == first["title"]
    page.fill("#input", "还有别的办法吗？")
    page.press("#input", "Enter")
    page.wait_for_selector("#log .msg.assistant:nth-child(3)[data-state=done]")
    assert sent[1]["messages"][-2:] == [
        {"role": "assistant", "content": summary},
        {"role": "user", "content": "还有别的办法吗？"},
    ]
    assert not_blank(page.screenshot())
    page.route(
        "**/v1/chat/completions", lambda route: route.fulfill(status=429, json=BUSY, headers={"Retry-After": "1"})
    )
    page.fill("#input", "再说一遍？")
    page.press("#input", "Enter")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error").startswith("The server is busy (429): the queue is full")
    assert page.input_value("#input") == "再说一遍？" and page.locator("#log .msg").count() == 3  # taken back
    assert page.errors == []
    page.context.close()
