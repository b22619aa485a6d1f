"""`GET /v1/models` says each model's tuning method and how it is served; the engine never takes a non-LoRA adapter
for the per-row engine."""

from __future__ import annotations

import json

import pytest
import torch
from peft import IA3Config, LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from pixiu.errors import PixiuError
from pixiu.serve.multi_lora import read_adapter

from .helpers import call


def test_models_say_how_each_is_served(app):
    cards = {card["id"]: card for card in call(app, "GET", "/v1/models").json()["data"]}
    assert cards["base"]["served"] == "base" and cards["base"]["method"] is None
    assert {cards[name]["served"] for name in ("law", "medical", "zhihu")} == {"per_row"}
    assert cards["law"]["method"] == "lora"  # read off adapter_config.json: the test adapters have no run record


@pytest.mark.parametrize(
    ("config", "method"),
    [
        (LoraConfig(r=4, target_modules=["q_proj"], use_dora=True, init_lora_weights=False), "dora"),
        (IA3Config(task_type="CAUSAL_LM"), "ia3"),
    ],
)
def test_engine_never_takes_a_dora_or_ia3_adapter_as_plain_lora(config, method, make_engine, tiny_model_dir, tmp_path):
    torch.manual_seed(0)
    get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config).save_pretrained(tmp_path / method)
    with pytest.raises(PixiuError, match="which pixiu cannot serve"):  # the per-row reader refuses it ...
        read_adapter(tmp_path / method)
    engine = make_engine()
    info = engine.load_adapter(method, tmp_path / method)  # ... so the engine serves it through peft
    assert info.served == "single" and engine.adapters.loaded()[method].single is not None


def test_adapters_list_says_how_each_registered_adapter_is_served(tmp_path):
    from click.testing import CliRunner

    from pixiu.cli import cli
    from pixiu.registry import register_adapter

    configs = {
        "law": {"peft_type": "LORA"},
        "dora": {"peft_type": "LORA", "use_dora": True},
        "prefix": {"peft_type": "PREFIX_TUNING"},
        "loha": {"peft_type": "LOHA"},
    }
    for name, config in configs.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
        register_adapter(name, "law", tmp_path / name, "base", {})
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}", encoding="utf-8")
    register_adapter("full", "law", tmp_path / "full", "base", {})
    register_adapter("gone", "law", tmp_path / "gone", "base", {})
    result = CliRunner().invoke(cli, ["adapters", "list", "--json"], catch_exceptions=False)
    rows = {row["name"]: (row["method"], row["served"]) for row in json.loads(result.stdout)}
    assert rows == {
        "law": ("lora", "per_row"),
        "dora": ("dora", "single"),
        "prefix": ("prefix", "single"),
        "loha": ("loha", "no"),
        "full": ("full", "base"),
        "gone": (None, "missing"),
    }
    table = CliRunner().invoke(cli, ["adapters", "list"], catch_exceptions=False).stdout
    assert "served" in table and "single" in table
