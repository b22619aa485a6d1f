"""Encoder-decoder bases (t5, mt5): 3 training steps, evaluation, and a served mixed batch whose every row equals
peft's own generate for that row's adapter alone. A tiny random model proves the plumbing, not answer quality."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSeq2SeqLM, T5Config

from pixiu.serve.request import SamplingParams
from pixiu.tiny import create_tiny_model

from .helpers import chat_ids
from .test_engine import Collector

PROMPTS = {"toy": "被告人张某盗窃财物，构成什么罪？", "base": "hello", "other": "What is the capital of France?"}
"""Prompts of different lengths, one per served model of a batch (in turn)."""


@pytest.fixture(scope="module", params=["t5", "mt5"])
def tiny_seq2seq(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny t5 and mt5 model folder."""
    return create_tiny_model(tmp_path_factory.mktemp(request.param), arch=request.param)


def train_tiny(base: Path, run_dir: Path, data: Path, *extra: str) -> dict:
    """Train an sft adapter of the toy domain on `base` for 3 steps into `run_dir` (evaluating it); its metrics."""
    from pixiu.config import load_config
    from pixiu.recipes.lora_sft import run
    from toy_domain import TOY

    overrides = ["data.max_seq_len=48", "train.batch_tokens=192", "data.eval_records=2", "eval.max_new_tokens=3"]
    overrides.append("eval.general=false")  # the forgetting probe is tested in tests/core/test_seq2seq.py
    config = load_config(
        overrides=[*overrides, "train.max_steps=3", "train.lr=1e-2", *extra], values={"base": str(base)}
    )
    return run(TOY, config, data, run_dir).metrics


def random_adapter(base: Path, folder: Path, seed: int, rank: int) -> Path:
    """A random non-zero LoRA adapter on the family's `auto` targets, saved by peft (a 3-step one barely moves)."""
    from peft import LoraConfig, get_peft_model

    from pixiu.families import lora_targets

    torch.manual_seed(seed)
    model = AutoModelForSeq2SeqLM.from_pretrained(base)
    targets = lora_targets(model, "auto")
    config = LoraConfig(r=rank, lora_alpha=16 * rank, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return folder


def solo(peft_model, tokenizer, prompt: list[int], adapter: str | None, max_tokens: int) -> list[int]:
    """Greedy answer tokens of one request alone through peft's generate: adapter `adapter`, or the plain base."""
    from pixiu.generate import stop_token_ids

    stops = stop_token_ids(tokenizer, peft_model)
    if adapter:
        peft_model.set_adapter(adapter)
    with torch.inference_mode(), nullcontext() if adapter else peft_model.disable_adapter():
        output = peft_model.generate(
            input_ids=torch.tensor([prompt]), do_sample=False, max_new_tokens=max_tokens, eos_token_id=stops
        )
    return [t for t in output[0, 1:].tolist() if t not in stops]  # the decoder's start token comes first


def served_and_solo(base: Path, adapters: dict[str, Path], max_tokens: int = 5) -> dict[str, tuple[list, list]]:
    """Serve one request per model of `adapters` (and "base"), each with its prompt of `PROMPTS`, queued together
    into one `Seq2SeqEngine` batch; per model, (the served greedy tokens, peft's `generate` of it alone).

    The family x method matrix can call it on any t5/mt5 folder and adapters of the per-row methods."""
    from peft import PeftModel

    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.seq2seq_engine import Seq2SeqEngine

    model, tokenizer = load_base(str(base))
    engine = Seq2SeqEngine(model, stop_token_ids(tokenizer, model), max_batch=len(adapters) + 1)
    for name, folder in adapters.items():
        engine.load_adapter(name, folder)
    prompts = list(PROMPTS.values())
    jobs = {name: chat_ids(tokenizer, prompts[i % len(prompts)]) for i, name in enumerate(["base", *adapters])}
    sinks = {name: Collector() for name in jobs}
    for name, prompt in jobs.items():  # queued before the start: one batch of all models and prompt lengths
        engine.submit(name, prompt, SamplingParams(max_tokens=max_tokens), sinks[name])
    engine.start()
    try:
        for sink in sinks.values():
            sink.wait()
    finally:
        engine.stop()
    reference = PeftModel.from_pretrained(
        AutoModelForSeq2SeqLM.from_pretrained(base),
        str(next(iter(adapters.values()))),
        adapter_name=next(iter(adapters)),
    )
    for name, folder in list(adapters.items())[1:]:
        reference.load_adapter(str(folder), adapter_name=name)
    reference.eval()
    return {
        name: (sinks[name].tokens, solo(reference, tokenizer, prompt, None if name == "base" else name, max_tokens))
        for name, prompt in jobs.items()
    }


def test_seq2seq_trains_evaluates_and_serves_a_mixed_batch_as_peft(tiny_seq2seq, tmp_path):
    from toy_domain import write_toy_data

    data = write_toy_data(tmp_path / "toy.jsonl", 16)
    metrics = train_tiny(tiny_seq2seq, tmp_path / "toy", data)
    assert metrics["records"] == 2 and "exact_match" in metrics["adapter"] and metrics["train"]["steps"] == 3
    adapters = {"toy": tmp_path / "toy", "other": random_adapter(tiny_seq2seq, tmp_path / "other", seed=7, rank=4)}
    answers = served_and_solo(tiny_seq2seq, adapters)
    for name, (served, alone) in answers.items():
        assert served == alone, name
    assert answers["other"][0] != answers["base"][0]  # the random adapter changes the answer: crossing would show


def test_pixiu_serve_answers_an_adapter_and_the_base_of_a_t5_streamed_or_not(tmp_path):
    from pixiu.serve.app import build_app
    from pixiu.serve.seq2seq_engine import Seq2SeqEngine
    from pixiu.serve.server import start_engine
    from pixiu.serve.state import Limits

    from .helpers import call

    base = create_tiny_model(tmp_path / "t5", arch="t5")
    engine, tokenizer = start_engine(
        str(base), {"law": random_adapter(base, tmp_path / "law", seed=3, rank=4)}, max_batch=4, max_waiting=8
    )
    assert isinstance(engine, Seq2SeqEngine)  # chosen by the base's config
    limits = Limits(context=512, max_prompt_tokens=256, max_tokens=16, max_body_bytes=64 * 1024)
    app = build_app(engine, tokenizer, base=str(base), limits=limits, admin_token=None)
    try:
        assert [m["id"] for m in call(app, "GET", "/v1/models").json()["data"]] == ["base", "law"]
        answers = {}
        for model in ("law", "base"):
            body = {"model": model, "messages": [{"role": "user", "content": PROMPTS["toy"]}], "max_tokens": 6}
            whole = call(app, "POST", "/v1/chat/completions", json=body).json()
            assert whole["model"] == model and whole["usage"]["completion_tokens"] == 6, whole
            streamed = call(app, "POST", "/v1/chat/completions", json={**body, "stream": True}).text
            chunks = [json.loads(line[6:]) for line in streamed.split("\n\n") if line.startswith("data: {")]
            text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
            assert text == whole["choices"][0]["message"]["content"]
            answers[model] = text
        assert answers["law"] != answers["base"]
    finally:
        engine.stop()


def test_requests_joining_a_decoding_seq2seq_batch_answer_as_alone(tiny_seq2seq, tmp_path):
    from peft import PeftModel

    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.seq2seq_engine import Seq2SeqEngine

    adapters = {
        name: random_adapter(tiny_seq2seq, tmp_path / name, seed, 4) for seed, name in enumerate(["law", "med"])
    }
    model, tokenizer = load_base(str(tiny_seq2seq))
    engine = Seq2SeqEngine(model, stop_token_ids(tokenizer, model), max_batch=4, prefill_chunk=8)
    for name, folder in adapters.items():
        engine.load_adapter(name, folder)
    engine.start()
    prompts = [chat_ids(tokenizer, prompt) for prompt in PROMPTS.values()]
    jobs = [("law", prompts[0], 12, Collector())]
    try:
        engine.submit(*jobs[0][:2], SamplingParams(max_tokens=12), jobs[0][3])
        assert jobs[0][3].first.wait(30)
        for name, prompt in (("med", prompts[1]), ("base", prompts[1]), ("law", prompts[1])):  # join while it decodes
            jobs.append((name, prompt, 6, Collector()))
            engine.submit(name, prompt, SamplingParams(max_tokens=6), jobs[-1][3])
        for job in jobs:
            job[3].wait()
    finally:
        engine.stop()
    reference = PeftModel.from_pretrained(
        AutoModelForSeq2SeqLM.from_pretrained(tiny_seq2seq), str(adapters["law"]), adapter_name="law"
    )
    reference.load_adapter(str(adapters["med"]), adapter_name="med")
    reference.eval()
    for name, prompt, max_tokens, sink in jobs:
        assert sink.tokens == solo(reference, tokenizer, prompt, None if name == "base" else name, max_tokens), name
    assert len({tuple(sink.tokens) for *_, sink in jobs[1:]}) == 3  # one prompt, three models, three answers
    assert engine.stats()["active"] == 0 and engine.stats()["generated_tokens"] == sum(len(j[3].tokens) for j in jobs)


def test_vllm_is_not_offered_an_encoder_decoder_base(tmp_path):
    from click.testing import CliRunner

    from pixiu.cli import cli

    base = tmp_path / "t5"
    T5Config(vocab_size=64, d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=16).save_pretrained(base)
    args = ["serve", "--engine", "vllm", "--print-command", "--no-registry", "--base", str(base)]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "encoder-decoder base" in refused.output and "--engine pixiu" in refused.output
