"""The question and hot-list spiders on saved answers that follow Zhihu's pages and JSON endpoints."""

from __future__ import annotations

import pytest
from scrapy import Request
from twisted.python.failure import Failure

from pixiu_zhihu.items import AnswerItem, HotQuestionItem, QuestionItem
from pixiu_zhihu.site import ZhihuApiError, answers_api_url, rebase
from pixiu_zhihu.spiders.answers import ZhihuAnswersSpider, parse_cookies, parse_question_ids
from pixiu_zhihu.spiders.hot import ZhihuHotSpider, parse_flag

from ._site import ZHIHU, response_for

INCLUDE = "include=content%2Cvoteup_count%2Ccomment_count%2Ccreated_time"


def follow(spider: ZhihuAnswersSpider, request: Request) -> list:
    """Run a request's callback on its saved response; return everything the callback yields."""
    return list(request.callback(response_for(request.url, request), **request.cb_kwargs))


def crawl_question(spider: ZhihuAnswersSpider, question_id: str) -> tuple[list, list[str]]:
    """Follow a question from its page through every answers page; return the items and the URLs fetched."""
    pending, items, urls = [spider.question_request(question_id)], [], []
    while pending:
        request = pending.pop(0)
        urls.append(request.url)
        for output in follow(spider, request):
            (pending if isinstance(output, Request) else items).append(output)
    return items, urls


def test_arguments() -> None:
    spider = ZhihuAnswersSpider(
        question_ids="1001, https://www.zhihu.com/question/1002/answer/9,1001",
        base_url="http://127.0.0.1:8000/",
        cookies="z_c0=abc; _xsrf=x=y",
        user_agent="Mozilla/5.0 test",
    )
    assert spider.question_ids == ["1001", "1002"]
    assert spider.base_url == "http://127.0.0.1:8000" and spider.allowed_domains == ["127.0.0.1"]
    request = spider.question_request("1001")
    assert request.url == "http://127.0.0.1:8000/question/1001"
    assert request.cookies == {"z_c0": "abc", "_xsrf": "x=y"} and request.headers[b"User-Agent"] == b"Mozilla/5.0 test"
    assert not hasattr(spider, "user_agent")  # a header, not scrapy's deprecated spider attribute
    assert ZhihuAnswersSpider().base_url == ZHIHU and ZhihuAnswersSpider().question_ids == []


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_question_ids, "1001,abc", "'abc' is not a question id"),
        (parse_cookies, "z_c0", "'z_c0' is not name=value"),
        (parse_flag, "maybe", "pass x=1 or x=0"),
    ],
)
def test_bad_arguments_say_how_to_fix(parse, value: str, message: str) -> None:
    args = (value, "x") if parse is parse_flag else (value,)
    with pytest.raises(ValueError, match=message):
        parse(*args)


def test_question_pages_are_followed_to_the_end() -> None:
    spider = ZhihuAnswersSpider(question_ids="1001")
    (question,), urls = crawl_question(spider, "1001")
    assert urls == [
        f"{ZHIHU}/question/1001",
        answers_api_url(ZHIHU, "1001", offset=0),
        # paging.next says http:// (as the site sometimes does); links are rebased onto base_url
        f"{ZHIHU}/api/v4/questions/1001/answers?{INCLUDE}&limit=20&offset=20",
        f"{ZHIHU}/api/v4/questions/1001/answers?{INCLUDE}&limit=20&offset=40",
    ]
    assert isinstance(question, QuestionItem) and question.complete
    assert (question.question_id, question.title, question.answer_count) == ("1001", "如何坚持每天早起？", 8)
    assert question.url == f"{ZHIHU}/question/1001" and question.detail.startswith("<p>试过很多次")
    assert [a.answer_id for a in question.answers] == [
        "90010001",
        "90010002",
        "90010003",
        "90010004",
        "90010005",
        "90010003",
        "90010006",
    ]  # cleaning and filtering are the pipelines' job
    first = question.answers[0]
    assert isinstance(first, AnswerItem)
    assert (first.author, first.voteup_count, first.comment_count, first.created_time) == (
        "晨跑的猫",
        120,
        14,
        1700000100,
    )
    assert first.text.startswith("<p>关键是<b>早睡</b>")
    assert question.answers[2].author == "匿名用户"


def test_login_wall_question_page_takes_the_title_from_the_answers() -> None:
    (question,), urls = crawl_question(ZhihuAnswersSpider(), "1002")
    assert len(urls) == 2 and question.title == "有哪些适合新手的家常菜？" and question.detail == ""
    assert question.answer_count == 2 and len(question.answers) == 2 and question.complete


def test_error_body_mid_question_keeps_the_answers_read_and_raises_the_sites_message() -> None:
    spider = ZhihuAnswersSpider()
    (answers_request,) = follow(spider, spider.question_request("1003"))
    next_request = follow(spider, answers_request)[0]
    outputs = []
    with pytest.raises(
        ZhihuApiError, match=r"question 1003: answers HTTP 403 \(code 10003\): 请求参数异常，请升级客户端后重试。"
    ):
        outputs.extend(next_request.callback(response_for(next_request.url), **next_request.cb_kwargs))
    (question,) = outputs
    assert not question.complete and [a.answer_id for a in question.answers] == ["90030001", "90030002"]


def test_missing_question_ends_with_a_clear_error() -> None:
    spider = ZhihuAnswersSpider()
    with pytest.raises(ZhihuApiError, match="question 1004: HTTP 404; no such question or it was deleted"):
        follow(spider, spider.question_request("1004"))


def test_error_body_on_the_first_answers_page_yields_nothing() -> None:
    spider = ZhihuAnswersSpider()
    request = spider.answers_request(QuestionItem(question_id="1004", title="t"), answers_api_url(ZHIHU, "1004"))
    with pytest.raises(ZhihuApiError, match="HTTP 404 \\(code 404\\): 你似乎来到了没有知识存在的荒原"):
        follow(spider, request)


def test_download_failures() -> None:
    spider = ZhihuAnswersSpider()
    page_request = spider.question_request("1001")
    failure = Failure(ConnectionRefusedError("refused"))
    failure.request = page_request
    (answers_request,) = spider.question_page_failed(failure)
    assert answers_request.url == answers_api_url(ZHIHU, "1001") and answers_request.cb_kwargs["question"].title == ""

    question = answers_request.cb_kwargs["question"]
    failure.request = answers_request
    assert list(spider.answers_failed(failure)) == []  # nothing read yet: nothing to keep
    question.answers.append(AnswerItem("1", "a", "<p>一个足够长的回答文本。</p>"))
    (kept,) = spider.answers_failed(failure)
    assert kept is question and not kept.complete


def test_start_without_question_ids_requests_nothing() -> None:
    async def collect(spider: ZhihuAnswersSpider) -> list:
        return [request async for request in spider.start()]

    import asyncio

    assert asyncio.run(collect(ZhihuAnswersSpider())) == []
    assert [r.url for r in asyncio.run(collect(ZhihuAnswersSpider(question_ids="7,8")))] == [
        f"{ZHIHU}/question/7",
        f"{ZHIHU}/question/8",
    ]
    assert asyncio.run(collect(ZhihuHotSpider(question_ids="7"))) == []
    assert len(asyncio.run(collect(ZhihuHotSpider(question_ids="7", hot="1")))) == 1


def test_hot_list_api() -> None:
    spider = ZhihuHotSpider()
    assert spider.hot_url == f"{ZHIHU}/api/v3/feed/topstory/hot-lists/total?limit=50"
    items = list(spider.parse_hot(response_for(spider.hot_url)))
    assert items == [
        HotQuestionItem(
            question_id="1001",
            title="如何坚持每天早起？",
            rank=1,
            heat="1234 万热度",
            excerpt="试过很多次定闹钟，总是起不来。",
            url=f"{ZHIHU}/question/1001",
            answer_count=8,
        ),
        HotQuestionItem(
            question_id="1002",
            title="有哪些适合新手的家常菜？",
            rank=2,
            heat="987 万热度",
            excerpt="",
            url=f"{ZHIHU}/question/1002",
            answer_count=2,
        ),
    ]  # the advertised article in between is skipped


def test_hot_list_billboard_page_and_following_answers() -> None:
    spider = ZhihuHotSpider(hot_url="/billboard", follow_answers="1", base_url="http://127.0.0.1:9")
    assert spider.hot_url == "http://127.0.0.1:9/billboard"
    requests = list(spider.parse_hot(response_for(spider.hot_url)))
    assert [(r.url, r.callback) for r in requests] == [
        ("http://127.0.0.1:9/question/1003", spider.parse_question),
        ("http://127.0.0.1:9/question/1001", spider.parse_question),
    ]
    (item, _) = ZhihuHotSpider(hot_url="/billboard").parse_hot(response_for(f"{ZHIHU}/billboard"))
    assert (item.question_id, item.rank, item.heat, item.answer_count) == ("1003", 1, "650 万热度", None)


def test_hot_list_error_page() -> None:
    with pytest.raises(ZhihuApiError, match="HTTP 404"):
        list(ZhihuHotSpider().parse_hot(response_for(f"{ZHIHU}/question/1004")))
    with pytest.raises(ZhihuApiError, match="no hot list"):
        list(ZhihuHotSpider().parse_hot(response_for(f"{ZHIHU}/question/1001")))


def test_rebase_keeps_path_and_query() -> None:
    rebased = rebase("http://www.zhihu.com/api/v4/x?a=1&b=2", "http://127.0.0.1:5")
    assert rebased == "http://127.0.0.1:5/api/v4/x?a=1&b=2"
