"""Summary parsing and scoring: ROUGE on jieba words (checked by hand), lengths, and empty texts."""

from __future__ import annotations

import pytest

from pixiu_zhihu.metrics import summary_metrics
from pixiu_zhihu.parser import parse_summary


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        ("高赞建议早点睡觉。", "高赞建议早点睡觉。"),
        ("总结：「早睡，给早起一个期待」\n多余的第二行", "早睡，给早起一个期待"),
        ("\n\n 标题: 一种 新的  设计方法 \n", "一种 新的 设计方法"),
        ("要点：早睡", "早睡"),
        ('"外部性"问题与"科斯定理"', '"外部性"问题与"科斯定理"'),
        ("“早睡早起”", "早睡早起"),
        ("《红楼梦》", "《红楼梦》"),
        ("", ""),
        ("   \n ", ""),
    ],
)
def test_parse_summary(text: str, summary: str) -> None:
    assert parse_summary(text) == summary


def test_rouge_by_hand() -> None:
    # jieba: 我/喜欢/吃/苹果 vs 我/喜欢/吃/香蕉 -> unigrams 3 of 4 shared, bigrams 2 of 3, LCS 3 words
    scores = summary_metrics(["我喜欢吃苹果"], ["我喜欢吃香蕉"])
    assert scores["rouge_1"] == pytest.approx(75.0, abs=1e-4)
    assert scores["rouge_2"] == pytest.approx(200 / 3, abs=1e-4)
    assert scores["rouge_l"] == pytest.approx(75.0, abs=1e-4)
    assert (scores["pred_chars"], scores["ref_chars"], scores["length_ratio"]) == (6.0, 6.0, 1.0)


def test_empty_texts_score_zero_without_crashing() -> None:
    scores = summary_metrics(["我喜欢吃苹果", "", "。"], ["我喜欢吃苹果", "参考", ""])
    assert scores["rouge_1"] == pytest.approx(100 / 3, abs=1e-4) == scores["rouge_2"]
    assert scores["pred_chars"] == pytest.approx(7 / 3) and scores["length_ratio"] == pytest.approx(7 / 8)
    assert summary_metrics([""], [""])["length_ratio"] == 0.0


def test_length_ratio_is_predicted_over_reference_characters() -> None:
    scores = summary_metrics(["一二三四五六", "一二"], ["一二三", "一二三"])
    assert scores["length_ratio"] == pytest.approx(8 / 6) and scores["ref_chars"] == 3.0
