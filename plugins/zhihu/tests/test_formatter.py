"""Records of every accepted shape -> chat messages; top-k answers by votes within a character budget."""

from __future__ import annotations

import pytest

from pixiu import BadRecord
from pixiu_zhihu.formatter import (
    CSL_SYSTEM_PROMPT,
    MAX_PROMPT_CHARS,
    SYSTEM_PROMPT,
    TOP_K,
    ZhihuSettings,
    format_record,
    question_prompt,
    top_answers,
)

QUESTION = {
    "question_id": "1001",
    "title": "如何坚持每天早起？",
    "detail": "试过很多次定闹钟，\n总是起不来。",
    "answers": [
        {"answer_id": "1", "text": "关键是早睡：晚上十一点前放下手机。", "voteup_count": 120},
        {"answer_id": "2", "text": "把闹钟放到床的另一头。", "voteup_count": 45},
        {"answer_id": "3", "text": "给早起一个期待：一顿喜欢的早餐。", "voteup_count": 300},
        {"answer_id": "4", "text": "每天提前十五分钟，慢慢调作息。", "voteup_count": 8},
    ],
}


@pytest.mark.parametrize("kind", ["user", "teacher", "silver", None])
def test_question_with_each_reference_kind(kind: str | None) -> None:
    record = {**QUESTION, "summary": " 早睡，\n给早起一个期待。 "}
    if kind:
        record["reference"] = kind
    messages = format_record(record)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[1]["content"] == (
        "问题：如何坚持每天早起？\n试过很多次定闹钟， 总是起不来。\n"
        "答1：给早起一个期待：一顿喜欢的早餐。\n答2：关键是早睡：晚上十一点前放下手机。\n答3：把闹钟放到床的另一头。"
    )
    assert messages[2]["content"] == "早睡， 给早起一个期待。"


def test_top_answers_by_votes_ties_keep_crawled_order() -> None:
    record = {
        "answers": [
            {"text": "甲", "voteup_count": 5},
            {"text": "乙", "voteup_count": 9},
            {"text": "丙", "voteup_count": 5},
            {"text": "  ", "voteup_count": 99},
            {"text": "丁"},
            "not an answer",
        ]
    }
    assert top_answers(record, 3) == ["乙", "甲", "丙"]
    assert top_answers(record, 10) == ["乙", "甲", "丙", "丁"]


def test_prompt_stays_within_the_character_budget() -> None:
    long = {
        **QUESTION,
        "title": "问" * 60,
        "answers": [{"text": f"回答{i}" + "很长的内容" * 30, "voteup_count": i} for i in range(6)],
    }
    prompt = question_prompt(long, top_k=TOP_K, max_chars=MAX_PROMPT_CHARS)
    lines = prompt.splitlines()
    assert len(prompt) <= MAX_PROMPT_CHARS
    assert lines[0].endswith("…") and [line[:5] for line in lines[1:]] == ["答1：回答", "答2：回答", "答3：回答"]
    assert lines[1].startswith("答1：回答5") and all(line.endswith("…") for line in lines[1:])
    # answers share the budget evenly: none is starved
    assert max(map(len, lines[1:])) - min(map(len, lines[1:])) <= 2


def test_short_answers_leave_their_share_to_the_others_and_to_the_detail() -> None:
    record = {**QUESTION, "answers": [{"text": "短答。", "voteup_count": 9}, {"text": "长" * 200, "voteup_count": 1}]}
    prompt = question_prompt(record, top_k=3, max_chars=60)
    assert len(prompt) <= 60 and "答1：短答。" in prompt and "长" * 30 in prompt
    assert question_prompt(QUESTION, top_k=1, max_chars=1000).count("\n") == 2  # title, detail, one answer


def test_settings_choose_answers_and_budget_defaults_unchanged() -> None:
    record = {**QUESTION, "summary": "早睡。"}
    assert format_record(record) == format_record(record, ZhihuSettings(top_answers=TOP_K, max_prompt_chars=100))
    prompt = format_record(record, ZhihuSettings(top_answers=1, max_prompt_chars=60))[1]["content"]
    assert len(prompt) <= 60 and "答1：给早起一个期待" in prompt and "答2" not in prompt


def test_csl_record() -> None:
    abstract = "采用修正的Rodrigues参数, 建立了飞行器姿态控制系统的数学模型。" * 5
    messages = format_record({"abstract": abstract, "title": "一种飞行器镇定控制器设计方法"})
    assert messages[0]["content"] == CSL_SYSTEM_PROMPT
    assert len(messages[1]["content"]) == MAX_PROMPT_CHARS and messages[1]["content"].endswith("…")
    assert messages[2]["content"] == "一种飞行器镇定控制器设计方法"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (QUESTION, "no reference summary: add a `summary` field, or run `pixiu zhihu references"),
        ({**QUESTION, "summary": "  "}, "no reference summary"),
        ({**QUESTION, "summary": "s", "reference": "gold"}, "field `reference` must be one of user, teacher, silver"),
        ({**QUESTION, "summary": "s", "answers": [{"text": ""}]}, "holds no answer with text"),
        ({**QUESTION, "summary": "s", "answers": "many"}, "field `answers` must be a list"),
        ({**QUESTION, "summary": "s", "title": ""}, "field `title` must be non-empty text"),
        ({"abstract": "摘要", "title": None}, "field `title` must be non-empty text, found missing"),
        ({"question_id": "1", "title": "热榜问题", "rank": 1}, "unknown record format"),
    ],
)
def test_unusable_records_say_why(record: dict, message: str) -> None:
    with pytest.raises(BadRecord, match=message.replace("(", r"\(")):
        format_record(record)
