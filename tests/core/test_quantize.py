"""QLoRA on a CPU-only machine: the BitsAndBytesConfig built, how load_base passes it on, and the errors."""

import pytest
import torch

import pixiu.models
import pixiu.quantize
import pixiu.training as recipe
from pixiu.config import load_config
from pixiu.errors import PixiuError
from pixiu.quantize import bnb_config, check_quantize


def test_4bit_is_nf4_with_double_quantisation_in_the_compute_dtype():
    config = bnb_config("4bit", torch.bfloat16)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert bnb_config("4bit", torch.float16).bnb_4bit_compute_dtype == torch.float16


def test_8bit_is_llm_int8():
    config = bnb_config("8bit", torch.bfloat16)
    assert config.load_in_8bit and not config.load_in_4bit


def test_quantize_off_cuda_says_it_needs_a_gpu():
    with pytest.raises(PixiuError, match=r"lora.quantize=4bit needs a CUDA GPU.*device is cpu"):
        check_quantize("4bit", torch.device("cpu"))


def test_quantize_without_bitsandbytes_says_what_to_install(monkeypatch):
    monkeypatch.setattr(pixiu.quantize.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(PixiuError, match=r"pip install 'pixiu\[qlora\]'"):
        check_quantize("8bit", torch.device("cuda", 0))


def test_load_base_passes_the_quantisation_config_and_device(tiny_model_dir, monkeypatch):
    seen = {}

    def from_pretrained(source, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop after the call")

    monkeypatch.setattr(pixiu.models.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    with pytest.raises(RuntimeError, match="stop after the call"):
        pixiu.models.load_base(
            str(tiny_model_dir), dtype=torch.bfloat16, device=torch.device("cuda", 0), quantize="4bit"
        )
    assert seen["dtype"] == torch.bfloat16 and seen["device_map"] == {"": torch.device("cuda", 0)}
    assert seen["quantization_config"].load_in_4bit
    assert seen["quantization_config"].bnb_4bit_compute_dtype == torch.bfloat16


@pytest.mark.parametrize("checkpointing", [True, False])
def test_a_quantised_base_gets_peft_k_bit_preparation_then_the_runs_checkpointing(checkpointing, monkeypatch):
    calls = []
    monkeypatch.setattr(recipe, "prepare_quantized", lambda base: calls.append("prepared") or base)
    monkeypatch.setattr(recipe, "enable_gradient_checkpointing", lambda base, every: calls.append(("ckpt", every)))
    overrides = ["lora.quantize=4bit", f"train.gradient_checkpointing={checkpointing}", "train.recompute_every=2"]
    assert recipe.prepare_base("base", load_config(overrides=overrides)) == "base"
    assert calls == ["prepared", ("ckpt", 2)] if checkpointing else ["prepared"]


def test_prepare_quantized_leaves_checkpointing_to_pixiu(monkeypatch):
    import peft

    calls = []
    monkeypatch.setattr(peft, "prepare_model_for_kbit_training", lambda model, **kw: calls.append(kw) or model)
    assert pixiu.quantize.prepare_quantized("model") == "model"
    assert calls == [{"use_gradient_checkpointing": False}]
