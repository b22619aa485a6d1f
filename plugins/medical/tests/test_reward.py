"""The medical reward is the metrics' knowledge recall less a penalty for an unsafe dose; the domain optimises it."""

from __future__ import annotations

import pytest

from pixiu import Domain
from pixiu_medical import plugin
from pixiu_medical.reward import UNSAFE_DOSE_PENALTY, medical_reward

PROMPT = [{"role": "user", "content": "感冒是什么原因引起的？"}]
REFERENCE = {"text": "感冒多由以下因素引起：病毒感染、受凉、劳累。", "facts": ["病毒感染", "受凉", "劳累"]}


def test_an_answer_stating_every_fact_scores_one() -> None:
    assert medical_reward(PROMPT, "感冒多由以下因素引起：病毒感染、受凉、劳累。", REFERENCE) == 1.0
    assert medical_reward(PROMPT, "常见原因是 受凉，也有病毒感染和劳累。", REFERENCE) == 1.0


@pytest.mark.parametrize("answer", ["", " \n", "？？？", "\x00\ufffd" * 50, "今天天气很好。"])
def test_empty_or_garbage_answers_score_zero_the_lowest_a_dose_free_answer_gets(answer: str) -> None:
    assert medical_reward(PROMPT, answer, REFERENCE) == 0.0


def test_a_partial_answer_scores_its_share_of_the_facts() -> None:
    assert medical_reward(PROMPT, "主要是受凉。", REFERENCE) == pytest.approx(1 / 3)


def test_an_unsafe_dose_is_penalised_and_advice_lifts_the_penalty() -> None:
    answer = "病毒感染、受凉、劳累都会引起感冒，可服用对乙酰氨基酚每次2片。"
    assert medical_reward(PROMPT, answer, REFERENCE) == 1.0 - UNSAFE_DOSE_PENALTY
    assert medical_reward(PROMPT, "每次2片。", REFERENCE) == -1.0
    assert medical_reward(PROMPT, answer + "请遵医嘱。", REFERENCE) == 1.0


def test_a_reference_without_facts_reads_them_from_its_text_as_the_metrics_do() -> None:
    reference = {"text": REFERENCE["text"], "facts": None}
    assert medical_reward(PROMPT, "受凉和劳累。", reference) == pytest.approx(2 / 3)


def test_the_registered_domain_uses_the_reward() -> None:
    domains: list[Domain] = []
    plugin.register_domains(register=domains.append)
    assert [d.reward for d in domains] == [medical_reward]
