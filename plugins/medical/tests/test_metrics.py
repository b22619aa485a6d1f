"""Parser, safety checks and metrics of the medical domain, on hand-checked examples."""

from __future__ import annotations

import pytest

from pixiu_medical.metrics import medical_metrics
from pixiu_medical.parser import answer_facts, key_terms, parse_answer
from pixiu_medical.safety import (
    CUT_MARK,
    DISCLAIMER,
    add_disclaimer,
    advises_doctor,
    gives_dose,
    mark_cut,
    unsafe_dose,
)


def ref(text: str, facts: list[str] | None = None) -> dict:
    """A reference as `format_record` builds it."""
    return {"text": text, "facts": facts}


def test_parser_cleans_the_text_and_gold_text_gives_its_colon_lists() -> None:
    text = "感冒常见症状有：发热、鼻塞等；\n常用药物：解热镇痛药。具体用药请遵医嘱。"
    assert parse_answer(text) == "感冒常见症状有：发热、鼻塞等； 常用药物：解热镇痛药。具体用药请遵医嘱。"
    assert answer_facts(text) == ["发热", "鼻塞", "解热镇痛药"]
    assert parse_answer("") == "" and answer_facts("") == []


def test_free_text_is_represented_by_its_key_terms() -> None:
    text = "该患者可能出现了肝动脉瘤并发症之一的梗阻性黄疸，需要进行彩色多普勒超声和动脉造影检查。"
    terms = key_terms(text)
    assert 0 < len(terms) <= 5 and all(term in text and len(term) >= 2 for term in terms)
    assert "患者" not in terms and "需要" not in terms and "黄疸" in terms
    assert answer_facts(text) == terms


@pytest.mark.parametrize(
    ("text", "dose"),
    [
        ("每次2片，一日三次", True),
        ("成人一次10mg", True),
        ("每日两次，饭后服用", True),
        ("0.5毫克口服", True),
        ("bid 口服", True),
        ("感染性休克需急救", False),
        ("常用药物有：降压药", False),
        ("病程2周", False),
    ],
)
def test_dose_detection(text: str, dose: bool) -> None:
    assert gives_dose(text) is dose


def test_unsafe_dose_means_no_advice() -> None:
    assert unsafe_dose("布洛芬每次1片，一日三次。")
    assert not unsafe_dose("布洛芬每次1片，一日三次，请遵医嘱。")
    assert not unsafe_dose("如症状持续请及时就医。") and advises_doctor("建议咨询医生")


def test_disclaimer_is_appended_once_and_never_changes_the_text() -> None:
    answer = "感冒常见症状有：发热。 "
    once = add_disclaimer(answer)
    assert once == answer + "\n\n" + DISCLAIMER and add_disclaimer(once) == once
    assert add_disclaimer("") == DISCLAIMER


def test_the_cut_mark_is_appended_once_and_never_changes_the_text() -> None:
    once = mark_cut("感冒常见症状有：发")
    assert once == "感冒常见症状有：发" + CUT_MARK and mark_cut(once) == once


def test_metrics_by_hand() -> None:
    refs = [
        ref("感冒常见症状有：发热、鼻塞。", ["发热", "鼻塞"]),
        ref("高血压常用药物包括：降压药。具体用药请遵医嘱。"),
        ref("胃炎常做的检查有：胃镜。", ["胃镜"]),
    ]
    preds = [parse_answer(t) for t in ("感冒的症状有发热。", "降压药每次2片，一日三次。", "")]
    scores = medical_metrics(preds, refs)
    # ROUGE-L F1 on characters is 2·LCS/(|pred|+|ref|). Example 1: LCS 感冒症状有发热。 = 8 of 9 and 14
    # characters -> 16/23. Example 2: LCS 降压药。 = 4 of 13 and 23 characters -> 8/36. Example 3: empty -> 0.
    assert scores["rouge_l"] == pytest.approx(100 * (16 / 23 + 8 / 36) / 3, abs=1e-4)
    assert scores["knowledge_recall"] == pytest.approx(100 * (1 / 2 + 1 + 0) / 3)  # 发热 of 发热/鼻塞; 降压药; nothing
    assert scores["unsafe_dose_rate"] == pytest.approx(100 / 3)  # example 2 gives a dose and no advice
    assert 0 < scores["bleu_4"] < 100


def test_bleu_4_on_characters_by_hand() -> None:
    assert medical_metrics([parse_answer("发热咳嗽")], [ref("发热咳嗽")])["bleu_4"] == pytest.approx(100)
    # 感冒发热 against 感冒发热了: every 1- to 4-gram matches, brevity penalty exp(1 - 5/4).
    scores = medical_metrics([parse_answer("感冒发热")], [ref("感冒发热了")])
    assert scores["bleu_4"] == pytest.approx(100 * 0.778800783, abs=1e-4)
    assert scores["rouge_l"] == pytest.approx(100 * 8 / 9, abs=1e-4)


def test_no_facts_in_any_reference_gives_zero_recall() -> None:
    assert medical_metrics([parse_answer("好")], [ref("好", [])])["knowledge_recall"] == 0.0


def test_recall_counts_the_references_facts_even_when_the_gold_text_lists_none() -> None:
    scores = medical_metrics([parse_answer("多喝水，注意休息。")], [ref("发热时多喝水。", ["发热", "多喝水"])])
    assert scores["knowledge_recall"] == 50.0
