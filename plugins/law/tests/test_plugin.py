"""The law plugin registers one domain whose parts fit together."""

from __future__ import annotations

import importlib
import itertools
import json

import pluggy
from pixiu import Domain, hookspecs

import pixiu_law
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
    assert domain.default_config.parent.name == "configs"


def test_spiders_import() -> None:
    (domain,) = registered()
    for path in domain.spiders:
        module, _, name = path.partition(":")
        assert getattr(importlib.import_module(module), name).name


def test_formatter_parser_and_metrics_agree_on_sample_data() -> None:
    (domain,) = registered()
    with domain.sample_data.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in itertools.islice(f, 20)]
    answers = [domain.parser(domain.formatter(r)[-1]["content"]) for r in records]
    refs = [set(r["meta"]["accusation"]) for r in records]
    assert domain.metrics(answers, refs)["accuracy"] == 100.0
