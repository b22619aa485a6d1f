"""Every decoder-only family of `pixiu models create-tiny`: per-row LoRA equals peft, and the family matrix
(3 training steps, save, evaluate, reload, a served batch). Tiny random models prove the plumbing only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, Qwen3NextConfig

from pixiu.errors import PixiuError
from pixiu.families import fallback_template
from pixiu.seq2seq import ENCODER_DECODER_FAMILIES
from pixiu.serve.multi_lora import MultiLora, read_adapter
from pixiu.serve.request import SamplingParams
from pixiu.tiny import ARCHES, TOKENS, create_tiny_model

from .helpers import chat_ids
from .test_engine import Collector

SERVED = [arch for arch in ARCHES if arch not in ENCODER_DECODER_FAMILIES]
"""Every decoder-only tiny family (t5 and mt5: tests/serve/test_seq2seq.py); the mistral, gemma2 and gemma3_text ones
have a 4-token sliding window."""
FAST = {"gpt2", "bloom", "gemma2"}
"""The matrix's default corners, the layouts furthest from llama's (Conv1D, fused qkv with alibi, a sliding
window); the rest run with -m slow (llama itself is trained and served by the default suite's other tests)."""


@pytest.fixture(scope="module")
def tiny_family(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_family(arch)`: the folder of a tiny model of that family, made once per module."""
    made: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in made:
            made[arch] = create_tiny_model(tmp_path_factory.mktemp(arch), arch=arch)
        return made[arch]

    return make


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


def family_params():
    """Each served family once; the corners outside `FAST` are slow."""
    return [pytest.param(arch, marks=() if arch in FAST else pytest.mark.slow) for arch in SERVED]


@pytest.mark.parametrize("arch", family_params())
def test_family_trains_evaluates_and_serves(tiny_family, tmp_path, arch):
    from peft import PeftModel

    from pixiu.config import load_config
    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.recipes.lora_sft import run
    from pixiu.serve.engine import Engine
    from toy_domain import TOY, write_toy_data

    base = tiny_family(arch)
    data = write_toy_data(tmp_path / "toy.jsonl", 16)
    overrides = ["data.max_seq_len=48", "train.batch_tokens=192", "data.eval_records=2", "eval.max_new_tokens=3"]
    config = load_config(overrides=[*overrides, "train.max_steps=3", "train.lr=1e-2"], values={"base": str(base)})
    run_dir = tmp_path / "run"
    summary = run(TOY, config, data, run_dir)
    assert summary.metrics["records"] == 2 and "exact_match" in summary.metrics["adapter"]
    adapter_config = json.loads((run_dir / "adapter_config.json").read_text(encoding="utf-8"))
    model, tokenizer = load_base(str(base))
    from pixiu.families import lora_targets

    assert sorted(adapter_config["target_modules"]) == sorted(lora_targets(model, "auto"))
    record = yaml.safe_load((run_dir / "pixiu_run.yaml").read_text(encoding="utf-8"))
    assert record["prompt_template"] == tokenizer.chat_template == (TOKENS[arch][2] or fallback_template(arch))
    engine = Engine(model, stop_token_ids(tokenizer, model), max_batch=2)
    engine.load_adapter("toy", run_dir, domain="toy")
    jobs = {"toy": chat_ids(tokenizer, "被告人张某盗窃财物，构成什么罪？"), "base": chat_ids(tokenizer, "hello")}
    sinks = {name: Collector() for name in jobs}
    for name, prompt in jobs.items():  # both queued before the start: one left-padded batch of two lengths
        engine.submit(name, prompt, SamplingParams(max_tokens=4), sinks[name])
    engine.start()
    try:
        for sink in sinks.values():
            sink.wait()
    finally:
        engine.stop()
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), str(run_dir)).eval()
    for name, prompt in jobs.items():
        assert sinks[name].tokens == solo(peft_model, tokenizer, prompt, adapter=name != "base"), (arch, name)


def solo(peft_model, tokenizer, prompt: list[int], *, adapter: bool) -> list[int]:
    """Greedy tokens of one request alone through peft, with its adapter or the plain base."""
    from contextlib import nullcontext

    from pixiu.generate import stop_token_ids

    stops = stop_token_ids(tokenizer, peft_model)
    with torch.inference_mode(), nullcontext() if adapter else peft_model.disable_adapter():
        output = peft_model.generate(
            input_ids=torch.tensor([prompt]),
            do_sample=False,
            max_new_tokens=4,
            eos_token_id=stops,
            pad_token_id=tokenizer.pad_token_id,
        )
    return [t for t in output[0, len(prompt) :].tolist() if t not in stops]


def test_a_cache_the_engine_cannot_batch_is_refused_before_the_weights_load(tmp_path, monkeypatch):
    import pixiu.models
    from pixiu.serve.server import start_engine

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    Qwen3NextConfig(num_hidden_layers=4).save_pretrained(tmp_path)  # linear-attention layers; no weights at all
    monkeypatch.setattr(pixiu.models, "load_base", never)
    with pytest.raises(PixiuError, match=r"LinearAttentionLayer \(model_type 'qwen3_next'\).*--engine vllm"):
        start_engine(str(tmp_path), {}, max_batch=2, max_waiting=4)
