"""pixiu's fused LoRA layers compute what peft's do, gradients included, and step aside wherever they would not."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

import pixiu.fused_lora as fused_lora
from pixiu.fused_lora import fuse_lora_layers
from pixiu.models import load_base
from pixiu.tiny import create_tiny_model

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _adapted(model_dir, *, dropout: float = 0.0, use_dora: bool = False, seed: int = 0):
    """The tiny model with a LoRA whose B is not zero (a fresh B would hide any error in the LoRA path)."""
    base, _ = load_base(str(model_dir))
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=TARGETS, use_dora=use_dora)
    model = get_peft_model(base, config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.05)
    return model


def _pass(model, input_ids: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Logits of one training pass and the gradient of every trainable weight."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    logits = model(input_ids=input_ids).logits
    (logits.float() ** 2).mean().backward()
    return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _ids(rows: int = 3, length: int = 11) -> torch.Tensor:
    return torch.randint(0, 200, (rows, length), generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fused_layers_match_peft_in_output_and_every_gradient(tiny_model_dir, dropout):
    peft_model = _adapted(tiny_model_dir, dropout=dropout)
    fused_model = _adapted(tiny_model_dir, dropout=dropout)
    assert fuse_lora_layers(fused_model) == 7 * fused_model.config.num_hidden_layers

    want_logits, want_grads = _pass(peft_model, _ids())
    got_logits, got_grads = _pass(fused_model, _ids())

    torch.testing.assert_close(got_logits, want_logits, rtol=1e-5, atol=1e-5)
    assert got_grads.keys() == want_grads.keys() and len(got_grads) == 2 * 7 * fused_model.config.num_hidden_layers
    for name, want in want_grads.items():
        assert want.abs().max() > 0, name  # every LoRA matrix gets a gradient, so a wrong one would show
        torch.testing.assert_close(got_grads[name], want, rtol=1e-4, atol=1e-6, msg=name)


def test_the_fused_path_is_what_runs(tiny_model_dir, monkeypatch):
    model = _adapted(tiny_model_dir)
    fuse_lora_layers(model)
    calls = []
    real = fused_lora.LoraLinearFunction.apply
    monkeypatch.setattr(fused_lora.LoraLinearFunction, "apply", lambda *a: calls.append(1) or real(*a))
    _pass(model, _ids())
    assert len(calls) == 7 * model.config.num_hidden_layers


def test_peft_runs_where_the_call_is_not_plain_lora(tiny_model_dir, monkeypatch):
    def refuse(*args):
        raise AssertionError("the fused path ran")

    dora = _adapted(tiny_model_dir, use_dora=True)
    fuse_lora_layers(dora)
    monkeypatch.setattr(fused_lora.LoraLinearFunction, "apply", refuse)
    _pass(dora, _ids())  # DoRA: peft's variant forward

    model = _adapted(tiny_model_dir)
    reference, _ = _pass(model, _ids())
    fuse_lora_layers(model)
    with model.disable_adapter():  # the adapter off: the base alone, as peft gives it
        base_logits = model(input_ids=_ids()).logits
    assert not torch.allclose(base_logits, reference)
    model.half()  # one dtype throughout is fused; a LoRA in another dtype than the input goes through peft
    for name, parameter in model.named_parameters():
        if "lora_" in name:
            parameter.data = parameter.data.float()
    model(input_ids=_ids())


def test_gpt2_conv1d_layers_are_left_to_peft(tmp_path):
    base, _ = load_base(str(create_tiny_model(tmp_path / "gpt2", arch="gpt2")))
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True))
    assert fuse_lora_layers(model) == 0
