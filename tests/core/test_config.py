"""Run configuration: defaults, YAML, typed values, --set overrides, domain settings and the errors they produce."""

import dataclasses

import pytest
import yaml
from pydantic import Field

from pixiu.config import DEFAULT_BASE, Section, formatter_for, load_config, to_dict
from pixiu.errors import ConfigError
from pixiu.plugins import get_domains
from pixiu.records import load_examples
from toy_domain import TOY, write_toy_data


class ShoutSettings(Section):
    """A toy domain's own settings."""

    suffix: str = "!"
    """Appended to every answer."""
    repeat: int = Field(1, gt=0)
    """How many times the suffix is appended."""


def shout(record: dict, settings: ShoutSettings) -> list[dict]:
    """The toy formatter, with the answer changed as the settings say."""
    return [
        {"role": "user", "content": record["q"]},
        {"role": "assistant", "content": record["a"] + settings.suffix * settings.repeat},
    ]


SHOUT = dataclasses.replace(TOY, name="shout", formatter=shout, settings=ShoutSettings)


def problems_of(*args, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(*args, **kwargs)
    return caught.value.problems


def test_defaults():
    config = load_config()
    assert config.base == DEFAULT_BASE
    assert config.lora.r > 0 and config.train.max_steps > 0


def test_fields_keep_their_docstrings_as_help():
    assert "alpha / r" in type(load_config().lora).model_fields["alpha"].description


def test_yaml_then_values_then_overrides(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  lr: 0.001\n  max_steps: 7\nlora:\n  r: 4\n", encoding="utf-8")
    config = load_config(
        [recipe], ["train.lr=1e-4", "lora.target_modules=[q_proj, v_proj]"], values={"train.max_steps": 9, "lora.r": 2}
    )
    assert config.train.lr == pytest.approx(1e-4)
    assert config.train.max_steps == 9 and config.lora.r == 2
    assert config.lora.target_modules == ["q_proj", "v_proj"]


def test_typed_values_are_not_read_as_yaml():
    assert load_config(values={"base": "./models/v1: final"}).base == "./models/v1: final"
    assert load_config(values={"base": "yes"}).base == "yes"


def test_set_value_that_yaml_reads_as_a_boolean_is_refused_with_a_hint():
    (problem,) = problems_of(overrides=["base=yes"])
    assert problem.startswith("base: Input should be a valid string (got True)") and "quote" in problem
    assert load_config(overrides=["base='yes'"]).base == "yes"


@pytest.mark.parametrize("recipe", ["", "lora:\n  r: 4\n"])
def test_setting_a_key_under_a_value_names_the_key(tmp_path, recipe):
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe, encoding="utf-8")
    (problem,) = problems_of([path], ["lora.r.x=1"])
    assert "lora.r is a value" in problem and "lora.r=VALUE" in problem


def test_target_modules_must_be_names():
    assert problems_of(overrides=["lora.target_modules=[1, 2]"]) == [
        "lora.target_modules.0: Input should be a valid string (got 1); "
        "quote text that YAML reads as something else, e.g. key='yes'",
        "lora.target_modules.1: Input should be a valid string (got 2); "
        "quote text that YAML reads as something else, e.g. key='yes'",
    ]


def test_float_alpha_is_accepted():
    assert load_config(overrides=["lora.alpha=12.5"]).lora.alpha == 12.5


def test_a_boolean_is_not_a_number():
    (problem,) = problems_of(overrides=["train.max_steps=true"])
    assert problem.startswith("train.max_steps: Input should be a valid integer")


def test_every_problem_is_reported_at_once(tmp_path):
    problems = problems_of(
        overrides=["train.lrr=1", "lora.r=abc", "nonsense", "data.on_bad_record=maybe", "eval.batch_size=0"]
    )
    assert len(problems) == 5
    assert any(p.startswith("unknown key 'train.lrr'; known keys here: batch_tokens,") for p in problems)
    assert any(p.startswith("lora.r: Input should be a valid integer (got 'abc')") for p in problems)
    assert any(p.startswith("--set 'nonsense'") for p in problems)
    assert any(p.startswith("data.on_bad_record: Input should be 'error' or 'skip'") for p in problems)
    assert any(p.startswith("eval.batch_size: Input should be greater than 0") for p in problems)


def test_contradictions_are_rejected():
    (problem,) = problems_of(overrides=["data.max_seq_len=1024", "train.batch_tokens=512"])
    assert problem.startswith("train.batch_tokens (512) must be >= data.max_seq_len (1024)")


def test_domain_settings_are_validated_and_reach_the_formatter(tmp_path):
    config = load_config(overrides=["plugins.shout.suffix=哦", "plugins.shout.repeat=2"], domain=SHOUT)
    assert config.plugins == {"shout": ShoutSettings(suffix="哦", repeat=2)}
    examples = load_examples(write_toy_data(tmp_path / "toy.jsonl", 3), formatter_for(SHOUT, config)).items
    assert all(e.messages[-1]["content"].endswith("哦哦") for e in examples)


def test_domain_settings_default_when_the_recipe_has_none_and_are_recorded():
    config = load_config(domain=SHOUT)
    assert config.plugins == {"shout": ShoutSettings()}
    assert yaml.safe_load(yaml.safe_dump(to_dict(config)))["plugins"] == {"shout": {"suffix": "!", "repeat": 1}}
    assert formatter_for(TOY, load_config(domain=TOY)) is TOY.formatter


def test_bad_domain_settings_are_reported_with_their_path():
    problems = problems_of(overrides=["plugins.shout.repeat=0", "plugins.shout.loud=1", "lora.r=0"], domain=SHOUT)
    assert len(problems) == 3
    assert any(p.startswith("plugins.shout.repeat: Input should be greater than 0") for p in problems)
    assert "unknown key 'plugins.shout.loud'; known keys here: repeat, suffix" in problems
    assert any(p.startswith("lora.r:") for p in problems)


def test_sections_of_other_domains_are_refused():
    (problem,) = problems_of(overrides=["plugins.law.labels=[a, b]"], domain=SHOUT)
    assert problem.startswith("plugins.law: this run is for domain 'shout', which reads only plugins.shout")


def test_a_section_for_a_domain_without_settings_is_refused():
    (problem,) = problems_of(overrides=["plugins.toy.x=1"], domain=TOY)
    assert problem == "plugins.toy: domain 'toy' declares no settings (Domain.settings); remove this section"


def test_domain_sections_need_the_domain():
    (problem,) = problems_of(overrides=["plugins.law.labels=[a, b]"])
    assert problem.startswith("plugins.law: domain settings need their domain")


def test_every_shipped_domain_recipe_validates(installed_plugins):
    domains = [d for d in get_domains().values() if d.default_config]
    assert domains, "expected at least one installed domain with a recipe"
    for domain in domains:
        load_config([domain.default_config], domain=domain)
