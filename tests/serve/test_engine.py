"""The scheduler: mixed batches equal solo runs, requests join and leave between steps, cancel, queue bound, unload."""

import threading
import time

import pytest

from pixiu.serve.adapters import UnknownModel
from pixiu.serve.engine import QueueFull
from pixiu.serve.request import SamplingParams

from .helpers import MODELS, PROMPTS, chat_ids, eventually


class Collector:
    """A sink that records tokens and the finish reason, and can wait for either."""

    def __init__(self):
        self.tokens: list[int] = []
        self.finish: str | None = None
        self.done = threading.Event()
        self.first = threading.Event()

    def __call__(self, token, finish):
        if token is not None:
            self.tokens.append(token)
            self.first.set()
        else:
            self.finish = finish
            self.done.set()

    def wait(self, timeout=30.0):
        assert self.done.wait(timeout), "the request did not finish in time"
        return self


def test_concurrent_requests_equal_their_solo_runs(make_engine, tokenizer, reference):
    engine = make_engine(max_batch=6)
    jobs = []
    for i in range(10):  # queued before the engine starts, so the first batch mixes all four models
        model, prompt, max_tokens = MODELS[i % 4], PROMPTS[i % len(PROMPTS)], 3 + 2 * (i % 5)
        jobs.append((model, chat_ids(tokenizer, prompt), max_tokens, Collector()))
    for model, ids, max_tokens, sink in jobs:
        engine.submit(model, ids, SamplingParams(max_tokens=max_tokens), sink)
    engine.start()
    assert jobs[0][3].first.wait(30)
    for i in range(6):  # a second wave joins a batch that is already decoding
        model, prompt = MODELS[(i + 1) % 4], PROMPTS[(i + 2) % len(PROMPTS)]
        jobs.append((model, chat_ids(tokenizer, prompt), 12, Collector()))
        engine.submit(model, jobs[-1][1], SamplingParams(max_tokens=12), jobs[-1][3])
    for model, prompt_ids, max_tokens, sink in jobs:
        sink.wait()
        tokens, _ = reference(model, prompt_ids, max_tokens)
        assert sink.tokens == tokens, (model, prompt_ids)
        assert sink.finish == ("length" if len(tokens) == max_tokens else "stop")
    answers = {model: reference(model, jobs[0][1], 8)[0] for model in MODELS}
    assert len({tuple(a) for a in answers.values()}) == 4  # every model answers differently: crossing would show
    eventually(lambda: engine._batch.cache is None)
    assert engine.stats()["active"] == 0 and engine.stats()["waiting"] == 0


def test_cancelled_request_leaves_the_batch(engine, tokenizer):
    ids = chat_ids(tokenizer, PROMPTS[0])
    stays, leaves = Collector(), Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=40), stays)
    request = engine.submit("medical", ids, SamplingParams(max_tokens=1000), leaves)
    assert leaves.first.wait(30)
    engine.cancel(request)
    assert leaves.wait().finish == "cancelled" and len(leaves.tokens) < 1000
    assert len(stays.wait().tokens) == 40 or stays.finish == "stop"


def test_queue_is_bounded(make_engine, tokenizer):
    engine = make_engine(max_waiting=2)  # not started: requests stay queued
    ids = chat_ids(tokenizer, "hi")
    for _ in range(2):
        engine.submit("base", ids, SamplingParams(max_tokens=2), Collector())
    with pytest.raises(QueueFull, match="retry"):
        engine.submit("base", ids, SamplingParams(max_tokens=2), Collector())
    assert engine.stats()["rejected"] == 1
    with pytest.raises(UnknownModel, match="loaded models: base, law, medical, zhihu"):
        engine.submit("nope", ids, SamplingParams(max_tokens=2), Collector())


def test_unload_lets_running_requests_finish(engine, tokenizer, reference):
    ids = chat_ids(tokenizer, PROMPTS[1])
    running = Collector()
    engine.submit("zhihu", ids, SamplingParams(max_tokens=60), running)
    assert running.first.wait(30)
    unloaded = engine.unload_adapter("zhihu")
    with pytest.raises(UnknownModel):
        engine.submit("zhihu", ids, SamplingParams(max_tokens=2), Collector())
    unloaded.result(timeout=30)
    assert running.done.is_set() and running.tokens == reference("zhihu", ids, 60)[0]
    assert (
        "zhihu" not in engine.adapters.loaded() and len(engine.adapters.lora._free) == engine.adapters.lora.capacity - 2
    )


def test_replacing_an_adapter_keeps_running_requests_on_the_old_one(engine, tokenizer, adapter_dirs, reference):
    ids = chat_ids(tokenizer, PROMPTS[2])
    old = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=30), old)
    assert old.first.wait(30)
    engine.load_adapter("law", adapter_dirs["medical"])  # a new version under the same name
    new = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=5), new)
    assert old.wait().tokens == reference("law", ids, 30)[0]
    assert new.wait().tokens == reference("medical", ids, 5)[0]


def test_sampling_is_reproducible_with_a_seed(engine, tokenizer):
    ids = chat_ids(tokenizer, PROMPTS[3])
    runs = []
    for _ in range(2):
        sink = Collector()
        engine.submit("law", ids, SamplingParams(max_tokens=12, temperature=1.5, top_p=0.9, seed=7), sink)
        runs.append(sink.wait().tokens)
    greedy = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=12), greedy)
    assert runs[0] == runs[1] != greedy.wait().tokens


def test_hot_load_is_fast(engine, adapter_dirs):
    started = time.perf_counter()
    info = engine.load_adapter("extra", adapter_dirs["law"])
    assert time.perf_counter() - started < 1.0 and info.rank == 8 and info.nbytes > 0
    engine.unload_adapter("extra").result(timeout=10)


def test_a_failing_prefill_fails_only_its_own_request(engine, tokenizer, reference):
    ids = chat_ids(tokenizer, PROMPTS[4])
    healthy, broken = Collector(), Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=20), healthy)
    engine.submit("law", [10**7], SamplingParams(max_tokens=5), broken)  # no such token: the embedding lookup fails
    assert broken.wait().finish == "error" and broken.tokens == []
    assert healthy.wait().tokens == reference("law", ids, 20)[0]
    assert engine.running


def test_a_long_prompt_is_prefilled_in_chunks_between_decode_steps(make_engine, tokenizer, reference):
    engine = make_engine(prefill_chunk=4).start()
    events = []  # sinks run on the engine thread, so this is the exact order of emitted tokens

    def sink(name, collector):
        def record(token, finish):
            events.append(name)
            collector(token, finish)

        return record

    runner, long = Collector(), Collector()
    forced = SamplingParams(max_tokens=60, logit_bias={100: 100.0})  # never an end-of-turn token: runs 60 steps
    engine.submit("zhihu", chat_ids(tokenizer, PROMPTS[3]), forced, sink("runner", runner))
    assert runner.first.wait(30)
    long_ids = chat_ids(tokenizer, " ".join(PROMPTS * 2))
    assert len(long_ids) > 40
    submitted = len(events)
    engine.submit("law", long_ids, SamplingParams(max_tokens=8), sink("long", long))
    long.wait()
    while_prefilling = events[submitted : events.index("long")].count("runner")
    assert while_prefilling >= -(-len(long_ids) // 4) - 2  # a decode step ran between every two chunks
    assert long.tokens == reference("law", long_ids, 8)[0]  # identical to prefilling it in one piece


def test_bf16_engine_serves_what_peft_serves(tiny_model_dir, adapter_dirs, tokenizer, reference):
    """A bf16 base (as `pixiu serve --precision bf16` loads it) answers every model and prompt greedily as peft in
    fp32 does. Four tokens: bf16 keeps 8 significant bits, so a near-tie can flip after a few more steps (one of
    these 24 answers does at its 6th token), which would be rounding, not routing."""
    import torch

    _serve_all_models_as_peft(tiny_model_dir, adapter_dirs, tokenizer, reference, torch.device("cpu"))


@pytest.mark.gpu
def test_cuda_bf16_engine_serves_what_peft_serves(tiny_model_dir, adapter_dirs, tokenizer, reference):
    """The same on a GPU: every tensor the engine makes must be on the model's device, or this fails."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    _serve_all_models_as_peft(tiny_model_dir, adapter_dirs, tokenizer, reference, torch.device("cuda", 0))


def _serve_all_models_as_peft(tiny_model_dir, adapter_dirs, tokenizer, reference, device):
    """Serve 4 tokens for every model and prompt from a bf16 engine on `device`; each equals peft's fp32 answer."""
    import torch

    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.engine import Engine

    model = load_base(str(tiny_model_dir), dtype=torch.bfloat16, device=device)[0]
    engine = Engine(model, stop_token_ids(tokenizer, model), max_batch=4)
    for name, folder in adapter_dirs.items():
        engine.load_adapter(name, folder, domain=name)
    stacks = [a for pair in engine.adapters.lora._stacks.values() for a in pair]
    assert {(a.dtype, a.device.type) for a in stacks} == {(torch.bfloat16, device.type)}
    jobs = [(m, chat_ids(tokenizer, p), Collector()) for m in MODELS for p in PROMPTS]
    for m, ids, sink in jobs:  # queued before the start: batches mix models
        engine.submit(m, ids, SamplingParams(max_tokens=4), sink)
    seeded = Collector()  # sampling, a logit bias, penalties and logprobs make their tensors on the device too
    bias = {5: -1.0}
    sampling = SamplingParams(max_tokens=4, temperature=0.7, seed=1, presence_penalty=0.5, logit_bias=bias, logprobs=2)
    engine.submit("law", jobs[0][1], sampling, seeded)
    engine.start()
    try:
        for m, ids, sink in jobs:
            assert sink.wait().tokens == reference(m, ids, 4)[0], (m, ids)
        assert len(seeded.wait().tokens) == 4 and seeded.finish == "length"
    finally:
        engine.stop()


def test_every_tensor_the_engine_makes_is_on_the_model_device(make_engine, tokenizer, reference, monkeypatch):
    """The device audit, on the CPU: with torch's default device set to `meta` on the engine thread, a tensor made
    without an explicit device lands on `meta`, which has no data, and its step fails. Right answers here mean the
    engine puts every tensor where the model is, which on a GPU is `cuda`."""
    import torch

    from pixiu.serve.engine import Engine

    loop = Engine._loop

    def loop_on_meta(self):
        with torch.device("meta"):
            loop(self)

    monkeypatch.setattr(Engine, "_loop", loop_on_meta)
    engine = make_engine(max_batch=3)
    jobs = [(m, chat_ids(tokenizer, PROMPTS[i % len(PROMPTS)]), Collector()) for i, m in enumerate(MODELS)]
    for m, ids, sink in jobs:
        engine.submit(m, ids, SamplingParams(max_tokens=5), sink)
    seeded = Collector()
    sampling = SamplingParams(max_tokens=5, temperature=0.7, seed=1, presence_penalty=0.5, logit_bias={5: -1.0})
    engine.submit("law", jobs[0][1], SamplingParams(**{**vars(sampling), "logprobs": 2}), seeded)
    engine.start()
    for m, ids, sink in jobs:
        assert sink.wait().tokens == reference(m, ids, 5)[0], m
        assert sink.finish in ("length", "stop")
    assert seeded.wait().finish == "length" and len(seeded.tokens) == 5
