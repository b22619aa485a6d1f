"""Scoring as core does it: references from the formatter or the parsed gold text, checks before metrics, clean text."""

import pytest

from pixiu import Domain, Example, PixiuError
from pixiu.evaluation import score_answers
from pixiu.generate import clean_answer
from pixiu.runs import read_split, write_split
from toy_domain import TOY

USER = {"role": "user", "content": "什么颜色？"}


def example(answer: str, reference=None) -> Example:
    return Example([USER, {"role": "assistant", "content": answer}], reference, "toy.jsonl:1")


def test_the_formatters_reference_is_scored_against_not_the_gold_text():
    given = [example("红色", reference="红"), example("蓝色", reference="蓝")]
    assert score_answers(TOY, ["红", "绿"], given) == {"exact_match": 50.0}


def test_without_a_reference_the_parsed_gold_answer_is_the_reference():
    plain = [example(" 红 "), example("蓝")]
    assert score_answers(TOY, ["红", "蓝 "], plain) == {"exact_match": 100.0}


def test_misaligned_or_empty_input_stops_before_the_domains_metrics():
    calls = []
    domain = Domain(
        name="spy",
        description="d",
        version="0",
        formatter=TOY.formatter,
        parser=str,
        metrics=lambda p, r: calls.append(1) or {"x": 1.0},
    )
    with pytest.raises(PixiuError, match="got 1 answers for 2 examples"):
        score_answers(domain, ["红"], [example("红"), example("蓝")])
    with pytest.raises(PixiuError, match="no examples to score"):
        score_answers(domain, [], [])
    assert calls == []


def test_metrics_must_return_finite_numbers():
    domain = Domain(
        name="nan",
        description="d",
        version="0",
        formatter=TOY.formatter,
        parser=str,
        metrics=lambda p, r: {"score": float("nan")},
    )
    with pytest.raises(PixiuError, match="finite number"):
        score_answers(domain, ["红"], [example("红")])


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("罪名：盗窃<|im_end|>\n<|im_start|>user\n又一轮", "罪名：盗窃"),
        ("<|im_start|>assistant\n早睡", "早睡"),
        ("答案<|eot_id|>", "答案"),
        ("  普通文本  ", "普通文本"),
        ("", ""),
    ],
)
def test_chat_tokens_are_stripped_before_parsing(text, clean):
    assert clean_answer(text) == clean
    assert score_answers(TOY, [text], [example(clean or "x", reference=clean)]) == {"exact_match": 100.0}


def test_the_split_keeps_references(tmp_path):
    examples = [example("红", reference={"facts": ["红"]}), example("蓝")]
    write_split(tmp_path / "split.jsonl", examples)
    assert read_split(tmp_path / "split.jsonl") == examples
    with pytest.raises(PixiuError, match="must be JSON-serialisable"):
        write_split(tmp_path / "bad.jsonl", [example("红", reference={"红"})])
