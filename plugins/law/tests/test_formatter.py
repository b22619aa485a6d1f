"""Records of every accepted shape -> chat messages for the chosen tasks; unusable records -> BadRecord."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from pixiu import BadRecord
from pixiu_law.answer import DEATH_PENALTY, LIFE_IMPRISONMENT
from pixiu_law.formatter import MAX_FACT_CHARS, QUESTION, SYSTEM_PROMPT, LawSettings, format_record
from pixiu_law.metrics import law_metrics
from pixiu_law.parser import parse_answer, parse_charges

CAIL = {
    "fact": "公诉机关指控：2016年3月28日20时许，被告人颜某在本市洪山区捡拾到被害人谢某的手机，"
    "并通过支付宝盗走人民币3723元。",
    "meta": {"accusation": ["盗窃"], "relevant_articles": [264]},
}


def test_cail_record() -> None:
    messages = format_record(CAIL).messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[1]["content"] == (
        "2016年3月28日20时许，被告人颜某在本市洪山区捡拾到被害人谢某的手机，并通过支付宝盗走人民币3723元。\n" + QUESTION
    )
    assert messages[2]["content"] == "罪名：盗窃"


def test_charges_are_normalised_deduplicated_and_sorted() -> None:
    record = {"fact": "被告人某甲多次作案。", "meta": {"accusation": ["盗窃罪", "[窝藏、包庇]", "盗窃", "抢劫"]}}
    answer = format_record(record).messages[-1]["content"]
    assert answer == "罪名：" + "；".join(sorted(["盗窃", "窝藏、包庇", "抢劫"]))
    assert parse_charges(answer) == {"盗窃", "窝藏、包庇", "抢劫"}


@pytest.mark.parametrize("colon", [":", "："])
@pytest.mark.parametrize("separator", [";", "；"])
def test_lawbench_record(colon: str, separator: str) -> None:
    record = {
        "instruction": "请你模拟法官依据下面事实给出罪名。",
        "question": f"事实{colon}公诉机关指控：被告人王某持刀抢走李某手机一部，后又在网吧窃取他人钱包。",
        "answer": f"罪名{colon}抢劫{separator}盗窃",
    }
    messages = format_record(record).messages
    assert messages[1]["content"] == "被告人王某持刀抢走李某手机一部，后又在网吧窃取他人钱包。\n" + QUESTION
    assert parse_charges(messages[2]["content"]) == {"抢劫", "盗窃"}


def test_crawled_item_shape() -> None:
    item = {"fact": "被告人钱某秘密取走同事手机并转走八千元。", "meta": {"accusation": ["盗窃"]}, "url": "u"}
    assert format_record(item).messages[-1]["content"] == "罪名：盗窃"


def test_facts_that_are_only_the_opening_words_are_kept() -> None:
    # Two real CAIL2018 records are like this: useless, but not malformed.
    record = {"fact": "常德市鼎城区人民检察院指控：", "meta": {"accusation": ["滥用职权"]}}
    assert format_record(record).messages[1]["content"] == "常德市鼎城区人民检察院指控：\n" + QUESTION


def test_whitespace_is_collapsed() -> None:
    record = {"fact": "  被告人某甲\n\n于2015年\u3000盗窃。 ", "meta": {"accusation": ["盗窃"]}}
    assert format_record(record).messages[1]["content"].split("\n")[0] == "被告人某甲 于2015年 盗窃。"


def test_long_facts_are_cut_on_a_sentence() -> None:
    sentence = "被告人某甲于某日在某地窃取他人财物。"  # 18 characters
    record = {"fact": sentence * 60, "meta": {"accusation": ["盗窃"]}}
    fact = format_record(record).messages[1]["content"].split("\n")[0]
    assert len(fact) <= MAX_FACT_CHARS and fact.endswith("。") and len(fact) > MAX_FACT_CHARS // 2


def test_long_facts_without_sentences_are_cut_with_ellipsis() -> None:
    record = {"fact": "甲" * 1000, "meta": {"accusation": ["盗窃"]}}
    fact = format_record(record).messages[1]["content"].split("\n")[0]
    assert fact == "甲" * MAX_FACT_CHARS + "…"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"fact": "", "meta": {"accusation": ["盗窃"]}}, "field `fact` is empty"),
        ({"fact": "   ", "meta": {"accusation": ["盗窃"]}}, "field `fact` is empty"),
        ({"fact": 42, "meta": {"accusation": ["盗窃"]}}, "field `fact` must be a string, found int"),
        ({"fact": "被告人某甲盗窃。"}, "field `meta.accusation` is missing (no `meta`)"),
        ({"fact": "被告人某甲盗窃。", "meta": {}}, "field `meta.accusation` is missing (`meta` = {})"),
        ({"fact": "被告人某甲盗窃。", "meta": {"accusation": []}}, "field `meta.accusation` names no charge"),
        ({"fact": "被告人某甲盗窃。", "meta": {"accusation": ["", " "]}}, "field `meta.accusation` names no charge"),
        ({"fact": "被告人某甲盗窃。", "meta": {"accusation": "盗窃"}}, "must be a list of strings"),
        ({"fact": "被告人某甲盗窃。", "meta": {"accusation": [1]}}, "must be a list of strings"),
        ({"question": "事实:被告人某甲盗窃。"}, "field `answer` is missing"),
        ({"question": "事实:被告人某甲盗窃。", "answer": "罪名:"}, "field `answer` names no charge"),
        ({"question": None, "answer": "罪名:盗窃"}, "field `question` must be a string, found NoneType"),
        ({"text": "hello"}, "unknown record format: expected CAIL2018 fields `fact` and `meta.accusation`"),
        (["not", "a", "dict"], "expected a JSON object per record, found list"),
    ],
)
def test_bad_records(record: object, message: str) -> None:
    with pytest.raises(BadRecord, match=re.escape(message)):
        format_record(record)  # type: ignore[arg-type]


FULL = {
    "fact": "被告人某甲于2016年3月在某地窃取他人手机一部。",
    "meta": {
        "accusation": ["盗窃"],
        "relevant_articles": [264, 264],
        "term_of_imprisonment": {"death_penalty": False, "imprisonment": 8, "life_imprisonment": False},
    },
}


@pytest.mark.parametrize(
    ("tasks", "answer", "reference"),
    [
        (["charges"], "罪名：盗窃", ["盗窃"]),
        (["articles"], "法条：第264条", {"articles": [264]}),
        (["term"], "刑期：8个月", {"term": 8}),
        (["term", "charges"], "罪名：盗窃\n刑期：8个月", {"charges": ["盗窃"], "term": 8}),
        (
            ["charges", "articles", "term"],
            "罪名：盗窃\n法条：第264条\n刑期：8个月",
            {"charges": ["盗窃"], "articles": [264], "term": 8},
        ),
    ],
)
def test_each_task_subset(tasks: list, answer: str, reference: object) -> None:
    example = format_record(FULL, LawSettings(tasks=tasks))
    assert example.messages[-1]["content"] == answer
    assert example.reference == reference
    scores = law_metrics([parse_answer(answer)], [reference])  # the gold answer, scored on its own reference
    assert scores.pop("cail_total", 300.0) == 300.0  # the sum of the three task scores, when all three are there
    assert scores and all(value == 100.0 for value in scores.values())


def test_charges_only_keeps_the_original_prompt_and_other_tasks_ask_for_their_parts() -> None:
    assert format_record(FULL).messages == format_record(FULL, LawSettings(tasks=["charges"])).messages
    assert format_record(FULL).messages[0]["content"] == SYSTEM_PROMPT
    messages = format_record(FULL, LawSettings(tasks=["charges", "articles", "term"])).messages
    assert "罪名、相关法条、刑期" in messages[0]["content"]
    assert messages[1]["content"].endswith("\n被告人犯了什么罪，适用刑法哪些条文，应判处什么刑罚？")


@pytest.mark.parametrize(
    ("term", "text", "code"),
    [
        ({"death_penalty": True, "imprisonment": 0, "life_imprisonment": False}, "刑期：死刑", DEATH_PENALTY),
        ({"death_penalty": False, "imprisonment": 0, "life_imprisonment": True}, "刑期：无期徒刑", LIFE_IMPRISONMENT),
        ({"death_penalty": True, "imprisonment": 0, "life_imprisonment": True}, "刑期：死刑", DEATH_PENALTY),
        ({"death_penalty": False, "imprisonment": 0, "life_imprisonment": False}, "刑期：0个月", 0),
    ],
)
def test_death_and_life_sentences(term: dict, text: str, code: int) -> None:
    record = {**FULL, "meta": {**FULL["meta"], "term_of_imprisonment": term}}
    example = format_record(record, LawSettings(tasks=["term"]))
    assert example.messages[-1]["content"] == text and example.reference == {"term": code}
    assert parse_answer(text).term == code


TERM = {"death_penalty": False, "imprisonment": 8, "life_imprisonment": False}


@pytest.mark.parametrize(
    ("tasks", "meta", "message"),
    [
        (["articles"], {"accusation": ["盗窃"]}, "task `articles` needs field `meta.relevant_articles`"),
        (["articles"], {"accusation": ["盗窃"], "relevant_articles": []}, "must be a non-empty list"),
        (["articles"], {"accusation": ["盗窃"], "relevant_articles": ["264"]}, "must be a non-empty list"),
        (["articles"], {"accusation": ["盗窃"], "relevant_articles": [True]}, "must be a non-empty list"),
        (["term"], {"accusation": ["盗窃"]}, "task `term` needs field `meta.term_of_imprisonment`"),
        (["term"], {"accusation": ["盗窃"], "term_of_imprisonment": 8}, "must hold `death_penalty`"),
        (["term"], {"accusation": ["盗窃"], "term_of_imprisonment": {**TERM, "imprisonment": -1}}, "whole number"),
        (["term"], {"accusation": ["盗窃"], "term_of_imprisonment": {**TERM, "death_penalty": 0}}, "true/false"),
    ],
)
def test_records_missing_what_a_task_needs(tasks: list, meta: dict, message: str) -> None:
    with pytest.raises(BadRecord, match=re.escape(message)):
        format_record({"fact": "被告人某甲盗窃。", "meta": meta}, LawSettings(tasks=tasks))


def test_a_lawbench_record_has_no_term_and_says_what_to_do() -> None:
    record = {"question": "事实:被告人某甲盗窃。", "answer": "罪名:盗窃"}
    with pytest.raises(BadRecord, match=r"a LawBench record lacks; use CAIL2018 records or drop `term`"):
        format_record(record, LawSettings(tasks=["charges", "term"]))


@pytest.mark.parametrize("tasks", [[], ["charges", "charges"], ["article"], "charges"])
def test_settings_refuse_bad_task_lists(tasks: object) -> None:
    with pytest.raises(ValidationError):
        LawSettings(tasks=tasks)  # type: ignore[arg-type]
