"""`pixiu adapters merge`: a plain Hugging Face folder that computes what base + adapter computes through peft."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from pixiu.cli import cli
from pixiu.registry import register_adapter


@pytest.fixture
def adapter(tiny_model_dir, tmp_path):
    """A random, non-zero LoRA adapter on the tiny model, saved by peft."""
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(tmp_path / "adapter")
    return tmp_path / "adapter"


def merge(*args):
    return CliRunner().invoke(cli, ["adapters", "merge", *map(str, args)])


def test_merged_folder_loads_plainly_and_matches_peft(tiny_model_dir, adapter, tmp_path):
    register_adapter("law", "law", adapter, str(tiny_model_dir), {})
    result = merge("law", "--output", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    merged_dir = tmp_path / "merged"
    assert result.stdout.strip() == str(merged_dir)
    names = {p.name for p in merged_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer_config.json"} <= names
    assert "adapter_config.json" not in names  # a plain model, no peft needed
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert AutoTokenizer.from_pretrained(merged_dir).chat_template
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter)).eval()
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.randint(3, 1000, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected, got = reference(input_ids=ids).logits, merged(input_ids=ids).logits
        before = plain(input_ids=ids).logits
    # fp32 throughout: (W + s*B@A) x and W x + s*B(A x) differ only in rounding order (3e-7 here), while the
    # adapter moves the logits by ~1: 1e-4 leaves rounding room and still catches a wrong or missing merge
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert (before - expected).abs().max() > 0.1


def test_merge_refuses_a_non_empty_output(tiny_model_dir, adapter, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine", encoding="utf-8")
    result = merge(adapter, "--output", taken, "--base", tiny_model_dir)
    assert result.exit_code == 1 and "already exists and is not empty" in result.output
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_merge_in_bf16_writes_bf16_weights(tiny_model_dir, adapter, tmp_path):
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    result = merge(adapter, "--output", tmp_path / "empty", "--precision", "bf16")  # base from adapter_config.json
    assert result.exit_code == 0, result.output
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "empty").dtype == torch.bfloat16
