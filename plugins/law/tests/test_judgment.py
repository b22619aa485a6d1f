"""Model text or gold answers -> relevant articles and prison terms (and all parts together, `parse_answer`)."""

from __future__ import annotations

import pytest

from pixiu_law.answer import DEATH_PENALTY, LIFE_IMPRISONMENT, LawAnswer
from pixiu_law.judgment import chinese_int, parse_articles, parse_term
from pixiu_law.parser import parse_answer


@pytest.mark.parametrize(
    ("text", "articles"),
    [
        ("法条:第264条", {264}),
        ("法条:第264条;第266条", {264, 266}),
        ("法条:264;266", {264, 266}),
        ("法条:《刑法》第264条第1款", {264}),
        ("法条:第133条之一", {133}),
        ("依照《中华人民共和国刑法》第二百六十四条、第一百三十三条之一的规定", {264, 133}),
        ("根据刑法第 234 条", {234}),
        ("法条:第999条", set()),  # the Criminal Law has 452 articles
        ("共3条意见", set()),  # outside a 法条 line only 第…条 counts
        ("", set()),
    ],
)
def test_articles(text: str, articles: set[int]) -> None:
    assert parse_articles(text) == articles


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("刑期:8个月", 8),
        ("刑期:0个月", 0),
        ("刑期:1年6个月", 18),
        ("刑期:有期徒刑一年零六个月", 18),
        ("刑期:十年", 120),
        ("刑期:有期徒刑1年,缓刑2年", 12),  # the main sentence, not the probation
        ("刑期:死刑", DEATH_PENALTY),
        ("刑期:死刑缓期二年执行", DEATH_PENALTY),
        ("刑期:无期徒刑", LIFE_IMPRISONMENT),
        ("判处有期徒刑三年,缓刑五年。", 36),
        ("被告人于2016年3月作案,判处拘役四个月", 4),  # a date is not a term
        ("判处无期徒刑,剥夺政治权利终身", LIFE_IMPRISONMENT),
        ("2016年3月", None),
        ("刑期:不详", None),
        ("刑期:12", 12),  # a bare number in the term line: months
        ("刑期:十八", 18),
        ("判处12", None),  # but not outside it
        ("", None),
    ],
)
def test_terms(text: str, term: int | None) -> None:
    assert parse_term(text) == term


@pytest.mark.parametrize(
    ("number", "value"),
    [("264", 264), ("二百六十四", 264), ("一百三十三", 133), ("二百零四", 204), ("十八", 18), ("两", 2), ("十", 10)],
)
def test_chinese_numerals(number: str, value: int) -> None:
    assert chinese_int(number) == value


@pytest.mark.parametrize("number", ["二六四", "", "三x"])
def test_what_is_not_a_numeral(number: str) -> None:
    assert chinese_int(number) is None


def test_a_canonical_answer_parses_to_its_parts() -> None:
    assert parse_answer("罪名：盗窃；诈骗\n法条：第264条；第266条\n刑期：30个月") == LawAnswer(
        charges=frozenset({"盗窃", "诈骗"}), articles=frozenset({264, 266}), term=30
    )


def test_free_text_parses_to_its_parts() -> None:
    text = "被告人张某的行为构成盗窃罪。依照《中华人民共和国刑法》第二百六十四条之规定，判处有期徒刑八个月，并处罚金。"
    assert parse_answer(text) == LawAnswer(charges=frozenset({"盗窃"}), articles=frozenset({264}), term=8)


def test_full_width_text_and_missing_parts() -> None:
    assert parse_answer("刑期：１２个月") == LawAnswer(term=12)
    assert parse_answer("我不知道。") == LawAnswer()
