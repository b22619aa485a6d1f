"""The zhihu reward is the ROUGE-L F1 the metrics report, per answer, and the zhihu domain optimises it."""

from __future__ import annotations

import pytest

from pixiu import Domain
from pixiu_zhihu import plugin
from pixiu_zhihu.metrics import summary_metrics
from pixiu_zhihu.reward import summary_reward

PROMPT = [{"role": "user", "content": "问题：如何高效学习编程？"}]
REFERENCE = "多写代码，先做小项目，再读优秀的开源代码。"


def test_the_reference_itself_scores_one() -> None:
    assert summary_reward(PROMPT, REFERENCE, REFERENCE) == pytest.approx(1.0)
    assert summary_reward(PROMPT, f"总结：“{REFERENCE}”\n补充说明", REFERENCE) == pytest.approx(1.0)


@pytest.mark.parametrize("answer", ["", " \n\t", "?!", "\x00\ufffd" * 50, "lorem ipsum 42", "天气晴"])
def test_empty_or_garbage_answers_score_zero(answer: str) -> None:
    assert summary_reward(PROMPT, answer, REFERENCE) == 0.0


def test_a_partial_answer_scores_between_and_matches_the_metrics_rouge_l() -> None:
    answer = "多写代码，多做小项目。"
    reward = summary_reward(PROMPT, answer, REFERENCE)
    assert 0.0 < reward < 1.0
    assert 100 * reward == pytest.approx(summary_metrics([answer], [REFERENCE])["rouge_l"])


def test_the_registered_domain_uses_the_reward() -> None:
    domains: list[Domain] = []
    plugin.register_domains(register=domains.append)
    assert [d.reward for d in domains] == [summary_reward]
