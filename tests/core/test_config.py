"""Run configuration: defaults, YAML, --set overrides and the errors they produce."""

import pytest

from pixiu.config import DEFAULT_BASE, load_config
from pixiu.errors import ConfigError
from pixiu.plugins import get_domains


def test_defaults():
    config = load_config()
    assert config.base == DEFAULT_BASE
    assert config.lora.r > 0 and config.train.max_steps > 0


def test_yaml_then_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  lr: 0.001\n  max_steps: 7\nlora:\n  r: 4\n", encoding="utf-8")
    config = load_config([recipe], ["train.lr=1e-4", "plugins.law.labels=[a, b]"])
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.max_steps == 7 and config.lora.r == 4
    assert config.plugins == {"law": {"labels": ["a", "b"]}}


def test_every_problem_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=["train.lrr=1", "lora.r=abc", "nonsense"])
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("train.lrr" in p for p in problems)
    assert any("lora.r" in p for p in problems)


def test_contradictions_are_rejected():
    with pytest.raises(ConfigError, match="batch_tokens"):
        load_config(overrides=["data.max_seq_len=1024", "train.batch_tokens=512"])


def test_every_shipped_domain_recipe_validates(installed_plugins):
    domains = [d for d in get_domains().values() if d.default_config]
    assert domains, "expected at least one installed domain with a recipe"
    for domain in domains:
        load_config([domain.default_config])
