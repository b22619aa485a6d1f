"""Base families: tiny models of each, LoRA targets per family, chat templates and their masks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pixiu.cli.models import TINY_ARCHES
from pixiu.cli.models import group as models_cli
from pixiu.config import load_config
from pixiu.data import DEFAULT_CHAT_TEMPLATE, IGNORE_INDEX, render, tokenize_example
from pixiu.errors import ConfigError
from pixiu.families import (
    FALLBACK_TEMPLATES,
    IA3_MODULES,
    LORA_TARGETS,
    fallback_template,
    linear_layer_names,
    lora_targets,
)
from pixiu.models import load_base
from pixiu.tiny import ARCHES, TOKENS, create_tiny_model

CHAT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "hi there"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": "ok"},
]
NOT_TARGETED = {"qwen2_moe": {"shared_expert_gate", "gate_proj", "up_proj", "down_proj"}}
"""Linear layers `auto` leaves alone on purpose: qwen2_moe's shared expert, whose names peft >= 0.22 would map onto
the fused routed experts, and its 1-output gate."""


@pytest.fixture(scope="module")
def tiny_bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """(model, tokenizer) of every tiny family, loaded through `load_base` as training does."""
    root = tmp_path_factory.mktemp("families")
    return {arch: load_base(str(create_tiny_model(root / arch, arch=arch))) for arch in ARCHES}


def test_cli_offers_every_tiny_architecture():
    assert tuple(ARCHES) == TINY_ARCHES and set(ARCHES) <= set(LORA_TARGETS)


@pytest.mark.parametrize("arch", list(ARCHES))
def test_auto_targets_are_every_projection_of_the_family(tiny_bases, arch):
    model, _ = tiny_bases[arch]
    assert model.config.model_type == arch
    present = linear_layer_names(model)
    targets = lora_targets(model, "auto")
    assert targets == list(LORA_TARGETS[arch])  # every name of the table exists in the real model
    assert set(present) - set(targets) == NOT_TARGETED.get(arch, set())
    assert "lm_head" not in present  # the output head is never adapted


def test_ia3_covers_every_family_peft_lacks_with_layers_it_has(tiny_bases):
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_IA3

    assert {arch for arch in ARCHES if arch not in PEFT_IA3} == set(IA3_MODULES)
    for arch, (targets, feedforward) in IA3_MODULES.items():
        present = linear_layer_names(tiny_bases[arch][0])
        assert set(targets) <= set(present) and set(feedforward) <= set(targets), arch


def test_auto_on_an_unlisted_family_is_every_linear_layer_but_the_head(tiny_bases, monkeypatch):
    model, _ = tiny_bases["opt"]
    monkeypatch.setattr(model.config, "model_type", "opt_like")
    assert lora_targets(model, ["auto"]) == ["fc1", "fc2", "k_proj", "out_proj", "q_proj", "v_proj"]


def test_a_missing_target_is_a_config_error_listing_what_exists(tiny_bases):
    model, _ = tiny_bases["gpt2"]
    with pytest.raises(ConfigError, match=r"names q_proj, v_proj, which this gpt2 base does not have.*c_attn, c_fc"):
        lora_targets(model, ["q_proj", "c_attn", "v_proj"])
    assert lora_targets(model, ["c_attn", "mlp.c_proj"]) == ["c_attn", "mlp.c_proj"]  # peft's path suffixes work


def test_attach_lora_adapts_conv1d_and_fused_layers(tiny_bases):
    from pixiu.lora import attach_lora

    for arch, fused in (("gpt2", "c_attn"), ("bloom", "query_key_value")):
        model, _ = tiny_bases[arch]
        peft_model = attach_lora(model, r=2, alpha=4, dropout=0.0, target_modules=["auto"])
        trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
        assert any(f".{fused}.lora_A." in name for name in trainable)
        assert {n.rpartition(".lora_")[0].rpartition(".")[2] for n in trainable} == set(LORA_TARGETS[arch])
        peft_model.unload()  # give the shared fixture model back without adapters


def test_target_modules_defaults_to_auto_and_takes_lists():
    assert load_config().lora.target_modules == ["auto"]
    assert load_config(overrides=["lora.target_modules=auto"]).lora.target_modules == ["auto"]
    assert load_config(overrides=["lora.target_modules=[c_attn]"]).lora.target_modules == ["c_attn"]


@pytest.mark.parametrize("arch", list(ARCHES))
def test_every_family_renders_and_learns_only_the_answers(tiny_bases, arch):
    _, tokenizer = tiny_bases[arch]
    shipped = TOKENS[arch][2]
    assert tokenizer.chat_template == (shipped or fallback_template(arch))
    example = tokenize_example(tokenizer, CHAT, 256)
    learned = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True) if label != -100])
    end = tokenizer.eos_token if tokenizer.chat_template != DEFAULT_CHAT_TEMPLATE else "<|im_end|>"
    answers = [learned_part.strip() for learned_part in learned.split(end) if learned_part.strip()]
    assert answers == ["hi there", "ok"], learned  # both answers, each closed by the family's end-of-turn token
    assert example.labels[: len(example.labels) // 3] == [IGNORE_INDEX] * (len(example.labels) // 3)
    assert tokenizer.decode(example.input_ids) == render(tokenizer, CHAT)


def test_fallback_templates_render_as_documented(tiny_bases):
    tokenizer = tiny_bases["gpt2"][1]  # eos <|endoftext|>
    rendered = {
        name: tokenizer.apply_chat_template(CHAT[:3], tokenize=False, chat_template=FALLBACK_TEMPLATES[name])
        for name in ("gpt2", "mistral", "gemma")
    }
    assert rendered["gpt2"] == "be brief\n\n### Human: 你好\n### Assistant: hi there<|endoftext|>\n"
    assert rendered["mistral"] == "[INST] <<SYS>>\nbe brief\n<</SYS>>\n\n你好 [/INST] hi there<|endoftext|>"
    assert rendered["gemma"] == (
        "<start_of_turn>user\nbe brief\n\n你好<end_of_turn>\n<start_of_turn>model\nhi there<end_of_turn>\n"
    )
    assert fallback_template("qwen2") == fallback_template("falcon") == DEFAULT_CHAT_TEMPLATE


def test_cli_creates_a_gpt2(tmp_path: Path):
    made = CliRunner().invoke(models_cli, ["create-tiny", str(tmp_path / "g"), "--arch", "gpt2"])
    assert made.exit_code == 0, made.output
    config = yaml.safe_load((tmp_path / "g" / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gpt2" and config["n_layer"] == 2


def test_an_unsupported_encoder_decoder_base_is_refused_before_its_weights_load(tmp_path: Path):
    from transformers import BartConfig

    from pixiu.errors import PixiuError

    BartConfig(vocab_size=64, d_model=8, encoder_layers=1, decoder_layers=1).save_pretrained(tmp_path)
    with pytest.raises(PixiuError, match=r"is a 'bart' model.*decoder-only.*t5 and mt5; see docs/model-families.md"):
        load_base(str(tmp_path))  # the folder has no weights: reaching them would fail differently
