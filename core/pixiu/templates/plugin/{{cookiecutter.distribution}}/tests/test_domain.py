"""The `{{ cookiecutter.name }}` domain's formatter, parser, metrics and registration, as pixiu will use them."""

from __future__ import annotations

import pytest
from pixiu import BadRecord, Domain
from pixiu.plugins import check_hook_api
from pixiu.testing import check_domain

from {{ cookiecutter.package }} import plugin
from {{ cookiecutter.package }}.formatter import format_record, preference_pairs
from {{ cookiecutter.package }}.metrics import answer_metrics
from {{ cookiecutter.package }}.parser import parse_answer
from {{ cookiecutter.package }}.reward import reward


@pytest.fixture(scope="module")
def domain() -> Domain:
    """The domain exactly as the plugin registers it."""
    registered: list[Domain] = []
    plugin.register_domains(register=registered.append)
    assert len(registered) == 1
    return registered[0]


def test_keeps_pixius_domain_contract(domain: Domain) -> None:
    assert domain.name == "{{ cookiecutter.name }}"
    assert domain.default_config is not None and domain.sample_data is not None
    assert check_domain(domain)["exact_match"] == 100.0  # gold answers parse to themselves


def test_declares_a_hook_api_this_pixiu_provides() -> None:
    check_hook_api(plugin, "{{ cookiecutter.name }}")


def test_served_answers_cut_by_max_tokens_are_marked() -> None:
    def answer(domain: str, finish_reason: str) -> str | None:
        return plugin.process_response(domain=domain, text="Fill", adapter="any", finish_reason=finish_reason)

    assert answer("{{ cookiecutter.name }}", "length") == "Fill" + plugin.CUT_MARK
    assert answer("{{ cookiecutter.name }}", "stop") is None  # a whole answer is left as it is
    assert answer("other", "length") is None  # adapters of other domains are not this plugin's business


def test_a_record_without_an_answer_is_rejected_with_the_reason() -> None:
    with pytest.raises(BadRecord, match="answer"):
        format_record({"question": "Is this answered?"})


def test_a_worse_answer_makes_a_preference_pair() -> None:
    record = {"question": "Is the K2 dishwasher-safe?", "answer": "No, wipe it clean.", "worse_answer": "Sure."}
    (pair,) = preference_pairs(record)
    assert (pair.prompt[-1]["role"], pair.chosen, pair.rejected) == ("user", "No, wipe it clean.", "Sure.")
    assert preference_pairs({"question": "Q?", "answer": "A."}) == []


def test_parser_keeps_the_first_line_normalised() -> None:
    assert parse_answer("  The K2 holds  1.7 litres.\nAnything else?") == "the k2 holds 1.7 litres"


def test_metrics_reward_overlap() -> None:
    assert answer_metrics(["a b"], ["a b"]) == {"exact_match": 100.0, "token_f1": 100.0}
    assert answer_metrics(["x y"], ["a b"]) == {"exact_match": 0.0, "token_f1": 0.0}
    assert answer_metrics(["a c"], ["a b"])["token_f1"] == pytest.approx(50.0)


def test_the_reward_scores_the_gold_answer_highest_and_never_raises(domain: Domain) -> None:
    prompt = [{"role": "user", "content": "How much does the K2 hold?"}]
    assert domain.reward is reward
    assert reward(prompt, "The K2 holds 1.7 litres.", "the k2 holds 1.7 litres") == 1.0
    assert 0.0 < reward(prompt, "It holds 2 litres.", "the k2 holds 1.7 litres") < 1.0
    assert reward(prompt, "", "the k2 holds 1.7 litres") == reward(prompt, "?!\n\x00", "the k2 holds 1.7 litres") == 0.0
