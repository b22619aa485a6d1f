"""`lora.method`: what each method keeps of its own (PiSSA's conversion, LoRA+'s rates, AdaLoRA's allocator), the
combinations refused before loading, exact resume, and merging. Training, evaluation and serving of every method on
every family are the matrix of tests/serve/test_matrix.py."""

from __future__ import annotations

import json
from typing import get_args

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from interrupts import interrupt_after_saving
from pixiu.config import LoraArgs, load_config
from pixiu.errors import ConfigError, PixiuError
from pixiu.families import lora_targets
from pixiu.methods import INITIAL_ADAPTER
from pixiu.models import load_base
from pixiu.recipes.lora_sft import run
from toy_domain import TINY_RUN, TOY, write_toy_data

METHODS = get_args(LoraArgs.model_fields["method"].annotation)
"""Every `lora.method`."""


def config_for(base, method, *extra):
    return load_config(overrides=[*TINY_RUN, f"lora.method={method}", *extra], values={"base": str(base)})


def test_pissa_adapter_is_converted_to_a_lora_on_the_original_base(tiny_model_dir, tmp_path, toy_plugin):
    data = write_toy_data(tmp_path / "toy.jsonl", 12)
    run_dir = tmp_path / "run"
    run(TOY, config_for(tiny_model_dir, "pissa", "lora.target_modules=[q_proj]"), data, run_dir)
    initial = load_file(str(run_dir / INITIAL_ADAPTER / "adapter_model.safetensors"))
    saved = load_file(str(run_dir / "adapter_model.safetensors"))
    key = next(k for k in saved if "lora_A" in k)
    assert saved[key].shape[0] == 2 * initial[key].shape[0]  # peft's conversion: rank 2r against the original base
    config = json.loads((run_dir / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["init_lora_weights"] is True


def test_loraplus_gives_b_matrices_the_larger_rate(tiny_model_dir, tmp_path):
    from pixiu.training import Optimiser, trainable_adapter

    config = config_for(tiny_model_dir, "loraplus", "lora.loraplus_lr_ratio=8")
    model = trainable_adapter(load_base(str(tiny_model_dir))[0], config, None)
    optimiser = Optimiser(model, config, torch.amp.GradScaler("cpu", enabled=False))
    names = {id(p): n for n, p in model.named_parameters()}
    rates = {
        "B" if "lora_B" in names[id(p)] else "A": group["lr"]
        for group in optimiser.optimizer.param_groups
        for p in group["params"]
    }
    assert rates == {"A": pytest.approx(1e-2), "B": pytest.approx(8e-2)}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lora.method=full", "lora.quantize=4bit"], "drop lora.quantize"),
        (["lora.method=adalora", "train.method=dpo"], "train.method=sft only"),
        (["lora.method=ia3", "train.devices=2", "train.strategy=fsdp"], "use --strategy ddp"),
        (["lora.method=freeze", "train.precision=fp16"], "fp32 or bf16"),
        (["lora.method=adalora", "lora.r=4", "lora.adalora_target_r=8"], "adalora_target_r"),
        (["lora.method=full", "train.init_adapter=law"], "drop train.init_adapter"),
    ],
)
def test_impossible_combinations_are_refused_before_loading(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=overrides)


class Stopped(Exception):
    """Stands for the run being killed right after a checkpoint."""


@pytest.mark.slow
@pytest.mark.parametrize("method", [m for m in METHODS if m != "lora"])  # lora: tests/core/test_lora_sft.py
def test_interrupted_run_resumes_to_the_same_weights(method, tiny_model_dir, tmp_path, monkeypatch):
    """A run stopped after checkpoint 2 and resumed ends with the weights of one run straight through (for
    adalora this includes its importance averages and rank pattern, kept in the checkpoint)."""
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    config = config_for(tiny_model_dir, method, "train.max_steps=6", "train.save_every=2", "data.eval_records=0")
    run(TOY, config, data, tmp_path / "straight")
    with monkeypatch.context() as patch:
        interrupt_after_saving(patch, 2, Stopped)
        with pytest.raises(Stopped):
            run(TOY, config, data, tmp_path / "resumed")
    run(TOY, config, data, tmp_path / "resumed", resume=True)
    straight = load_file(str(tmp_path / "straight" / "checkpoints" / "step-0000006" / "adapter.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "checkpoints" / "step-0000006" / "adapter.safetensors"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


@pytest.mark.parametrize("method", ["dora", "ia3", "adalora"])
def test_merged_model_computes_what_the_adapter_does(method, tiny_model_dir, tmp_path):
    from peft import get_peft_model

    from pixiu.merge import merge_adapter
    from pixiu.methods import peft_config

    torch.manual_seed(0)
    lora = config_for(tiny_model_dir, method).lora
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    adapted = get_peft_model(base, peft_config(lora, 10, lora_targets(base, lora.target_modules)))
    with torch.no_grad():  # move every adapter weight off its identity start, so the merge has something to show
        for p in adapted.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    adapted.save_pretrained(tmp_path / "adapter")
    merged = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base=str(tiny_model_dir))
    ids = torch.tensor([[5, 6, 7, 8]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "adapter")
    with torch.no_grad():
        expected = reference.eval()(input_ids=ids).logits
        plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()(input_ids=ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged).eval()(input_ids=ids).logits
    assert not torch.allclose(expected, plain, atol=1e-4)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_prompt_learning_adapters_are_refused_by_merge(method, tiny_model_dir, tmp_path):
    from peft import get_peft_model

    from pixiu.merge import merge_adapter
    from pixiu.methods import peft_config

    lora = config_for(tiny_model_dir, method).lora
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    get_peft_model(base, peft_config(lora, 10, ["q_proj"])).save_pretrained(tmp_path / "adapter")
    with pytest.raises(PixiuError, match=f"lora.method={method}.*no weights to merge"):
        merge_adapter(tmp_path / "adapter", tmp_path / "merged", base=str(tiny_model_dir))
    assert not (tmp_path / "merged").exists()


def test_ia3_on_a_family_neither_peft_nor_pixiu_has_ia3_layers_for_is_refused_by_name(tiny_model_dir, monkeypatch):
    from pixiu.methods import attach_method

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    monkeypatch.setattr(base.config, "model_type", "newfamily")  # a family in neither table
    config = load_config(overrides=["lora.method=ia3"], values={"base": "unused"})
    with pytest.raises(PixiuError, match=r"lora.method=ia3 .* model_type 'newfamily'; use lora.method lora"):
        attach_method(base, config.lora, 3)
