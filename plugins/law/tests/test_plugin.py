"""The law plugin registers one domain whose parts fit together."""

from __future__ import annotations

import dataclasses

import pluggy

import pixiu_law
from pixiu import Domain, hookspecs
from pixiu.testing import check_domain
from pixiu_law import plugin


def registered() -> list[Domain]:
    pm = pluggy.PluginManager("pixiu")
    pm.add_hookspecs(hookspecs)
    pm.register(plugin)
    pm.check_pending()
    domains: list[Domain] = []
    pm.hook.register_domains(register=domains.append)
    return domains


def test_registers_the_law_domain() -> None:
    (domain,) = registered()
    assert domain.name == "law" and domain.version == pixiu_law.__version__ == "0.1.0"
    assert domain.sample_data is not None and domain.sample_data.is_file()
    assert domain.default_config is not None and domain.default_config.name == "smollm2_135m_lora.yaml"
    assert domain.default_config.parent.name == "configs" and domain.settings is not None


def test_keeps_the_domain_contract_and_gold_answers_parse_to_the_records_charges() -> None:
    (domain,) = registered()
    assert check_domain(domain)["accuracy"] == 100.0


def test_keeps_the_contract_under_all_three_tasks() -> None:
    (domain,) = registered()
    recipe = domain.default_config.parent / "smollm2_135m_lora_cail3.yaml"  # type: ignore[union-attr]
    scores = check_domain(dataclasses.replace(domain, default_config=recipe))
    assert scores["cail_score"] == scores["articles_cail_score"] == scores["term_score"] == 100.0
    assert scores["cail_total"] == 300.0
