"""`pixiu.testing.check_domain` passes a sound domain and names each real mistake a plugin can make."""

import dataclasses

import pytest

from pixiu import Example
from pixiu.testing import check_domain
from toy_domain import TOY, exact_match, format_record, write_toy_data


@pytest.fixture
def data(tmp_path):
    return write_toy_data(tmp_path / "toy.jsonl", 8)


def broken(**changes):
    return dataclasses.replace(TOY, **changes)


def test_a_sound_domain_passes_and_returns_the_gold_scores(data):
    assert check_domain(TOY, data=data) == {"exact_match": 100.0}


def test_a_sound_reward_passes(data):
    def reward(prompt, answer, reference):
        assert prompt[-1]["role"] == "user"
        return float(answer.strip() == reference)

    assert check_domain(broken(reward=reward), data=data) == {"exact_match": 100.0}


def raising_reward(prompt, answer, reference):
    raise ValueError("no answer to parse")


@pytest.mark.parametrize(
    ("reward", "message"),
    [
        (raising_reward, "reward fails: ValueError: no answer to parse; it must never raise"),
        (lambda prompt, answer, reference: float("nan"), "reward must return a finite number"),
        (lambda prompt, answer, reference: answer == reference, "not a bool"),
        (lambda prompt, answer, reference: None, "reward must return a finite number"),
        (lambda prompt, answer, reference: -len(answer), "scores the gold answer .* below an empty answer"),
        ("exact_match", "reward must be a function or None, found str"),
    ],
)
def test_reward_mistakes_are_caught(data, reward, message):
    with pytest.raises(AssertionError, match=message):
        check_domain(broken(reward=reward), data=data)


def test_a_domain_without_data_to_check_is_told_to_ship_some():
    with pytest.raises(AssertionError, match="no sample_data to check"):
        check_domain(TOY)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Toy Domain"}, "name 'Toy Domain' must be lower-case"),
        ({"description": ""}, "description must be one non-empty line"),
        ({"spiders": ("toy_domain:NoSuchSpider",)}, "spider 'toy_domain:NoSuchSpider' does not import"),
        ({"spiders": "toy_domain:Spider"}, "not one string"),
        ({"parser": lambda text: ""}, "score no higher than empty answers"),
        ({"metrics": lambda preds, refs: {"exact_match": float("inf")}}, "finite number"),
        ({"metrics": lambda preds, refs: {"exact_match": "100"}}, "finite number"),
        ({"metrics": lambda preds, refs: {}}, "no score"),
        ({"metrics": lambda preds, refs: exact_match(preds, refs[1:])}, "fail on the gold answers: ValueError"),
        ({"formatter": lambda r: format_record(r).messages[:1]}, "ending with the assistant's answer"),
        ({"formatter": lambda r: Example(format_record(r).messages, reference={r["a"]})}, "JSON-serialisable"),
        ({"formatter": lambda r: format_record(r).messages[1:]}, "need a user turn before the answer"),
    ],
)
def test_real_mistakes_are_caught(data, changes, message):
    with pytest.raises(AssertionError, match=message):
        check_domain(broken(**changes), data=data)


def test_too_few_examples_and_a_bad_recipe_are_reported_together(tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 2)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  no_such_key: 1\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"(?s)default_config .* does not load.*only 2 examples"):
        check_domain(broken(default_config=recipe), data=data)
