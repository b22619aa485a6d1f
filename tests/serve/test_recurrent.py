"""A recurrent base (RWKV) in the continuous-batching engine: per-row states and per-row LoRA in one batch.

The reference recomputes each request alone from its whole token list at every step (no state, no batch, no
padding), through peft on transformers' own RWKV layers: what the engine's rows must equal. Tiny random model.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from pixiu.models import load_base
from pixiu.serve.engine import Engine
from pixiu.serve.request import SamplingParams
from pixiu.tiny import create_tiny_model

from .test_engine import Collector
from .test_families import random_adapter


@pytest.fixture(scope="module")
def rwkv_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_tiny_model(tmp_path_factory.mktemp("rwkv"), arch="rwkv")


@pytest.fixture(scope="module")
def rwkv_adapters(rwkv_base: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rwkv-adapters")
    return {
        name: random_adapter(rwkv_base, root / name, seed, rank)
        for seed, (name, rank) in enumerate([("a", 8), ("b", 4)])
    }


@torch.inference_mode()
def alone(base: Path, adapter: Path | None, prompt: list[int], steps: int) -> list[int]:
    """Greedy tokens of one request, the whole sequence recomputed at every step (rescaling off, as pixiu runs)."""
    model = AutoModelForCausalLM.from_pretrained(base)
    model.config.rescale_every = 0
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    ids = list(prompt)
    for _ in range(steps):
        ids.append(int(model.eval()(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


def test_mixed_batch_with_a_late_joiner_equals_each_request_alone(rwkv_base, rwkv_adapters):
    model, _ = load_base(str(rwkv_base))
    engine = Engine(model, [], max_batch=4, prefill_chunk=3)  # no stop token: every request runs its max_tokens
    for name, folder in rwkv_adapters.items():
        engine.load_adapter(name, folder, domain="toy")
    jobs = {  # different lengths, prefilled in chunks of 3 that carry the state on
        "a": ([5, 6, 7, 8, 9, 10, 11, 12], 10),
        "base": ([13, 14], 10),
        "b": ([15, 16, 17, 18, 19], 10),
    }
    sinks = {name: Collector() for name in jobs}
    for name, (prompt, steps) in jobs.items():  # queued before the start: one batch of three rows
        engine.submit(name, prompt, SamplingParams(max_tokens=steps), sinks[name])
    engine.start()
    try:
        assert sinks["a"].first.wait(30)
        late = ([20, 21, 22, 23], 4)  # joins the running batch mid-decode
        sinks["late"] = Collector()
        engine.submit("a", late[0], SamplingParams(max_tokens=late[1]), sinks["late"])
        joined_mid_decode = not sinks["base"].done.is_set()
        for sink in sinks.values():
            sink.wait()
    finally:
        engine.close()
    assert joined_mid_decode
    for name, (prompt, steps) in {**jobs, "late": late}.items():
        adapter = None if name == "base" else rwkv_adapters["a" if name == "late" else name]
        assert sinks[name].tokens == alone(rwkv_base, adapter, prompt, steps), name
    assert len({tuple(sink.tokens) for sink in sinks.values()}) == len(sinks)  # the rows did differ


def test_scores_of_a_reward_model_equal_load_reward_models(rwkv_base, tmp_path):
    """`Engine.score` (what /v1/score runs) reads right-padded rows: a recurrent network never sees the padding
    after a row, so the scores equal the reward model's own, which `pixiu.reward_model` computes the same way."""
    import yaml

    from pixiu.generate import stop_token_ids
    from pixiu.preference import tokenize_answer
    from pixiu.reward_model import last_answer_positions, load_reward_model, save_head
    from pixiu.runs import RUN_FILE

    folder = random_adapter(rwkv_base, tmp_path / "rm", seed=7, rank=4)
    head = torch.nn.Linear(64, 1)
    with torch.no_grad():
        head.weight.normal_(generator=torch.Generator().manual_seed(3))
    save_head(head, folder)
    record = {"base_model": str(rwkv_base), "domain": "toy", "config": {"data": {"max_seq_len": 48}}}
    (folder / RUN_FILE).write_text(yaml.safe_dump(record), encoding="utf-8")
    reference = load_reward_model(folder, device="cpu", precision="fp32")
    items = [("你好", "hello there, a longer answer"), ("2+2?", "4"), ("tea?", "boil water")]
    expected = reference.score_batch(items, batch_size=1)  # each row alone: no padding at all
    model, tokenizer = load_base(str(rwkv_base))
    engine = Engine(model, stop_token_ids(tokenizer, model))  # one right-padded pass for all rows
    engine.load_adapter("rm", folder, domain="toy")
    rows = []
    for prompt, answer in items:
        example = tokenize_answer(tokenizer, [{"role": "user", "content": prompt}], answer, 48)
        rows.append((example.input_ids, int(last_answer_positions(torch.tensor([example.labels]))[0])))
    try:
        got = engine.score("rm", rows)
    finally:
        engine.close()
    assert got == pytest.approx(expected, abs=1e-5) and len({round(s, 4) for s in expected}) == len(items)
