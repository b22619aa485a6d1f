"""The law reward is the F1 of the answer's charges against the case's, and the law domain optimises it."""

from __future__ import annotations

import pytest

from pixiu import Domain
from pixiu_law import plugin
from pixiu_law.reward import charge_reward

PROMPT = [{"role": "system", "content": "你是刑事法律助手，根据案情判断罪名。"}, {"role": "user", "content": "案情"}]


def test_the_exact_charges_score_one() -> None:
    assert charge_reward(PROMPT, "罪名：盗窃；诈骗", ["盗窃", "诈骗"]) == 1.0


@pytest.mark.parametrize("answer", ["", "   ", "？？？<eos>", "\x00\ufffd" * 50, "罪名：", "不构成犯罪。"])
def test_empty_or_garbage_answers_score_zero(answer: str) -> None:
    assert charge_reward(PROMPT, answer, ["盗窃"]) == 0.0


def test_a_partial_answer_scores_its_f1() -> None:
    # one of two charges found, one wrong charge added: precision 1/2, recall 1/2
    assert charge_reward(PROMPT, "罪名：盗窃；抢劫", ["盗窃", "诈骗"]) == pytest.approx(0.5)
    assert 0.0 < charge_reward(PROMPT, "罪名：盗窃", ["盗窃", "诈骗"]) < 1.0


def test_no_charges_on_either_side_score_one_and_on_one_side_zero() -> None:
    assert charge_reward(PROMPT, "不构成犯罪。", []) == 1.0
    assert charge_reward(PROMPT, "罪名：盗窃", []) == 0.0


def test_the_registered_domain_uses_the_reward() -> None:
    domains: list[Domain] = []
    plugin.register_domains(register=domains.append)
    assert [d.reward for d in domains] == [charge_reward]
