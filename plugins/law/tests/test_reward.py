"""The law reward: the F1 of the answer's charges (and articles) and CAIL's term score; the law domain optimises it."""

from __future__ import annotations

import pytest

from pixiu import Domain
from pixiu_law import plugin
from pixiu_law.reward import charge_reward, law_reward

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
    assert [d.reward for d in domains] == [law_reward]


@pytest.mark.parametrize("answer", ["罪名：盗窃；诈骗", "罪名：盗窃；抢劫", "不构成犯罪。", ""])
def test_a_charge_list_reference_scores_as_charge_reward(answer: str) -> None:
    assert law_reward(PROMPT, answer, ["盗窃", "诈骗"]) == charge_reward(PROMPT, answer, ["盗窃", "诈骗"])


def test_the_reward_averages_the_tasks_of_the_reference() -> None:
    gold = {"charges": ["盗窃"], "articles": [264, 266], "term": 8}
    assert law_reward(PROMPT, "罪名：盗窃\n法条：第264条；第266条\n刑期：8个月", gold) == 1.0
    # charges 1, articles F1 2/3 (one of two), term 0.8 (|log 11 - log 9| = 0.2007 is just past 0.2)
    assert law_reward(PROMPT, "罪名：盗窃\n法条：第264条\n刑期：10个月", gold) == pytest.approx((1 + 2 / 3 + 0.8) / 3)
    assert law_reward(PROMPT, "刑期：死刑", {"term": -2}) == 1.0
    assert law_reward(PROMPT, "刑期：无期徒刑", {"term": -2}) == 0.0
    assert law_reward(PROMPT, "", gold) == 0.0
