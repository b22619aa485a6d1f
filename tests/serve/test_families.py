"""Every decoder-only family of `pixiu models create-tiny`: per-row LoRA equals peft in a mixed batch, and caches
the engine cannot batch are refused. Training, evaluation and serving per family are tests/serve/test_matrix.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen3NextConfig

from pixiu.errors import PixiuError
from pixiu.seq2seq import ENCODER_DECODER_FAMILIES
from pixiu.serve.multi_lora import MultiLora, read_adapter
from pixiu.tiny import ARCHES

SERVED = [arch for arch in ARCHES if arch not in ENCODER_DECODER_FAMILIES]
"""Every decoder-only tiny family (t5 and mt5: tests/serve/test_seq2seq.py); the mistral, gemma2 and gemma3_text ones
have a 4-token sliding window."""


def random_adapter(base: Path, folder: Path, seed: int, rank: int) -> Path:
    """A random non-zero LoRA adapter on the family's `auto` targets, saved by peft."""
    from peft import LoraConfig, get_peft_model

    from pixiu.families import lora_targets

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=lora_targets(model, "auto"), init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("arch", SERVED)
def test_mixed_batch_rows_match_peft(tiny_family, tmp_path, arch):
    from peft import PeftModel

    base = tiny_family(arch)
    adapters = {
        name: random_adapter(base, tmp_path / name, seed, rank)
        for seed, (name, rank) in enumerate([("a", 8), ("b", 4)])
    }
    input_ids = torch.randint(3, 1000, (4, 7), generator=torch.Generator().manual_seed(0))
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base), str(adapters["a"]), adapter_name="a"
    )
    reference.load_adapter(str(adapters["b"]), adapter_name="b")
    expected = {}
    with torch.inference_mode():
        for name in adapters:
            reference.set_adapter(name)
            expected[name] = reference(input_ids=input_ids).logits
        with reference.disable_adapter():
            expected[None] = reference(input_ids=input_ids).logits
    model = AutoModelForCausalLM.from_pretrained(base)
    loras = MultiLora(model)
    slots = {name: loras.add(read_adapter(folder)) for name, folder in adapters.items()}
    rows = ["a", None, "b", "a"]
    with torch.inference_mode(), loras.route([slots.get(name) for name in rows]):
        logits = model(input_ids=input_ids).logits
    for i, name in enumerate(rows):
        assert torch.allclose(logits[i], expected[name][i], atol=1e-5), (arch, name)
    assert not torch.allclose(expected["a"], expected[None], atol=1e-3)  # the adapters change the output


def test_a_cache_the_engine_cannot_batch_is_refused_before_the_weights_load(tmp_path, monkeypatch):
    import pixiu.models
    from pixiu.serve.server import start_engine

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    Qwen3NextConfig(num_hidden_layers=4).save_pretrained(tmp_path)  # linear-attention layers; no weights at all
    monkeypatch.setattr(pixiu.models, "load_base", never)
    with pytest.raises(PixiuError, match=r"LinearAttentionLayer \(model_type 'qwen3_next'\).*--engine vllm"):
        start_engine(str(tmp_path), {}, max_batch=2, max_waiting=4)
