"""Adapters served one at a time through peft (dora, ia3, adalora, prefix, prompt): each answers as peft's generate
does for that adapter alone, amid per-row LoRA and base traffic; cancel, unload, listing and refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from pixiu.errors import PixiuError
from pixiu.recurrent import RECURRENT_TYPES
from pixiu.seq2seq import ENCODER_DECODER_FAMILIES
from pixiu.serve.adapters import UnknownModel, WrongKind
from pixiu.serve.request import SamplingParams
from pixiu.serve.server import served_as
from pixiu.tiny import ARCHES

from .helpers import ADMIN_TOKEN, PROMPTS, call, chat_ids, eventually
from .test_engine import Collector

SINGLE = ("dora", "ia3", "adalora", "prefix", "prompt")


def _config(method: str):
    """A small peft config of `method` on the tiny llama."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig

    return {
        "dora": lambda: LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], use_dora=True),
        "ia3": lambda: IA3Config(task_type="CAUSAL_LM"),
        "adalora": lambda: AdaLoraConfig(
            init_r=6, target_r=2, total_step=4, tinit=0, tfinal=1, deltaT=1, target_modules=["q_proj", "up_proj"]
        ),
        "prefix": lambda: PrefixTuningConfig(num_virtual_tokens=3, task_type="CAUSAL_LM"),
        "prompt": lambda: PromptTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM"),
    }[method]()


@pytest.fixture(scope="module")
def single_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One saved peft adapter per method, its trainable weights moved well away from their initial values; AdaLoRA's
    ranks pruned by peft's own allocator, so that it is served as peft loads it: cut to the ranks kept."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("single")
    for seed, method in enumerate(SINGLE, start=11):
        torch.manual_seed(seed)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), _config(method))
        with torch.no_grad():
            for parameter in model.parameters():
                if parameter.requires_grad:
                    parameter.add_(torch.randn_like(parameter))
        if method == "adalora":
            ids = torch.arange(5, 12).unsqueeze(0)
            for step in range(4):
                model(input_ids=ids, labels=ids).loss.backward()
                model.base_model.update_and_allocate(step)
                model.zero_grad()
            kept = sorted(sum(mask) for mask in model.peft_config["default"].rank_pattern.values())
            assert kept[0] < kept[-1] < 6, kept  # ranks were pruned, unevenly
        model.save_pretrained(root / method)
    return {method: root / method for method in SINGLE}


@torch.inference_mode()
def peft_generate(
    base_dir: Path, folder: Path, prompt_ids: list[int], max_tokens: int, dtype=torch.float32, device="cpu"
) -> tuple[list[int], list[float]]:
    """peft's greedy `generate` with the adapter in `folder` alone on the base in `base_dir` (in `dtype` on `device`):
    the tokens before a stop token, and each one's log-probability."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base

    model, tokenizer = load_base(str(base_dir))
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=dtype).to(device)
    peft_model = PeftModel.from_pretrained(base, str(folder)).eval()
    stops = stop_token_ids(tokenizer, model)
    ids = torch.tensor([prompt_ids], device=device)
    output = peft_model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=max_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        output_logits=True,
        return_dict_in_generate=True,
    )
    tokens = [t for t in output.sequences[0, len(prompt_ids) :].tolist() if t not in stops]
    return tokens, [float(step[0].log_softmax(-1)[t]) for step, t in zip(output.logits, tokens, strict=False)]


@pytest.fixture(scope="module")
def peft_alone(tiny_model_dir: Path, single_dirs: dict[str, Path]):
    """`answer(method, prompt_ids, max_tokens) -> (tokens, logprobs)`: `peft_generate` with that adapter, cached."""
    cache: dict = {}

    def answer(method: str, prompt_ids: list[int], max_tokens: int) -> tuple[list[int], list[float]]:
        key = (method, tuple(prompt_ids), max_tokens)
        if key not in cache:
            cache[key] = peft_generate(tiny_model_dir, single_dirs[method], prompt_ids, max_tokens)
        return cache[key]

    return answer


@pytest.fixture
def single_engine(make_engine, single_dirs):
    """`make(**options)`: an engine (not started) serving the three per-row test adapters and every single one."""

    def make(**options):
        engine = make_engine(**options)
        for method, folder in single_dirs.items():
            engine.load_adapter(method, folder, domain="toy")
        return engine

    return make


def test_single_adapters_answer_as_peft_alone_amid_mixed_traffic(single_engine, tokenizer, reference, peft_alone):
    engine = single_engine(max_batch=16, prefill_chunk=7)  # prompts go in over several chunks, virtual tokens first
    assert not hasattr(engine.model, "peft_config")  # the shared base is left as it was
    models = [*SINGLE, "law", "base"]
    jobs = []
    for i in range(14):  # queued before the start: the first steps mix every group
        model, prompt = models[i % len(models)], PROMPTS[i % len(PROMPTS)]
        jobs.append([model, chat_ids(tokenizer, prompt), 4 + 3 * (i % 3), Collector()])
    for job in jobs:
        job.append(engine.submit(job[0], job[1], SamplingParams(max_tokens=job[2], logprobs=0), job[3]))
    engine.start()
    assert jobs[0][3].first.wait(30)
    for i, model in enumerate(models):  # a second wave joins groups that are already decoding
        ids, sink = chat_ids(tokenizer, PROMPTS[(i + 3) % len(PROMPTS)]), Collector()
        jobs.append([model, ids, 9, sink, engine.submit(model, ids, SamplingParams(max_tokens=9, logprobs=0), sink)])
    for model, ids, max_tokens, sink, request in jobs:
        if model in ("law", "base"):
            tokens, logits = reference(model, ids, max_tokens)
            logprobs = [float(step.log_softmax(-1)[t]) for step, t in zip(logits, tokens, strict=False)]
        else:
            tokens, logprobs = peft_alone(model, ids, max_tokens)
        assert sink.wait().tokens == tokens, (model, ids)
        assert [lp.logprob for lp in request.logprobs] == pytest.approx(logprobs, abs=1e-4), (model, ids)
    eventually(lambda: not engine._singles and engine._batch.cache is None)
    assert engine.stats()["active"] == 0


def test_every_single_method_changes_the_answer(tokenizer, reference, peft_alone):
    ids = chat_ids(tokenizer, PROMPTS[1])
    tokens, logits = reference("base", ids, 6)
    base = [float(step.log_softmax(-1)[t]) for step, t in zip(logits, tokens, strict=False)]
    for method in SINGLE:  # else the test above could not tell an adapter from the base
        assert peft_alone(method, ids, 6) != (tokens, pytest.approx(base, abs=1e-3)), method


def test_cancel_and_unload_a_single_adapter(single_engine, tokenizer, peft_alone, reference):
    engine = single_engine().start()
    ids = chat_ids(tokenizer, PROMPTS[2])
    running, cancelled, beside = Collector(), Collector(), Collector()
    engine.submit("dora", ids, SamplingParams(max_tokens=40), running)
    request = engine.submit("dora", ids, SamplingParams(max_tokens=1000), cancelled)
    engine.submit("law", ids, SamplingParams(max_tokens=40), beside)
    assert cancelled.first.wait(30)
    engine.cancel(request)
    assert cancelled.wait().finish == "cancelled" and len(cancelled.tokens) < 1000
    unloaded = engine.unload_adapter("dora")
    with pytest.raises(UnknownModel):
        engine.submit("dora", ids, SamplingParams(max_tokens=2), Collector())
    unloaded.result(timeout=30)  # once the running request has finished on it
    assert running.done.is_set() and running.tokens == peft_alone("dora", ids, 40)[0]
    assert beside.wait().tokens == reference("law", ids, 40)[0]
    assert "dora" not in engine.adapters.loaded() and not engine.adapters.retiring
    after = Collector()
    engine.submit("base", ids, SamplingParams(max_tokens=8), after)
    assert after.wait().tokens == reference("base", ids, 8)[0]


def test_models_list_and_log_say_how_each_adapter_is_served(single_engine, make_app, caplog):
    with caplog.at_level(logging.INFO, logger="pixiu.serve"):
        engine = single_engine().start()
    assert "adapter 'ia3' (lora.method=ia3) is served single" in caplog.text
    assert "adapter 'law' (lora.method=lora) is served per_row" in caplog.text
    cards = {card["id"]: card for card in call(make_app(engine), "GET", "/v1/models").json()["data"]}
    assert {name: cards[name]["served"] for name in (*SINGLE, "law")} == {
        **dict.fromkeys(SINGLE, "single"),
        "law": "per_row",
    }
    assert cards["adalora"]["method"] == "adalora" and cards["prefix"]["method"] == "prefix"
    assert served_as(engine) == "law (per_row), medical (per_row), zhihu (per_row), " + ", ".join(
        f"{method} (single)" for method in SINGLE
    )  # the line `pixiu serve` prints at startup


def test_a_single_adapter_does_not_score(single_engine, tokenizer):
    engine = single_engine().start()
    with pytest.raises(WrongKind, match=r"ia3 is a chat adapter.*no reward head"):
        engine.score("ia3", [(chat_ids(tokenizer, "hi"), 3)])


def test_what_cannot_be_served_is_refused_before_loading(make_engine, single_dirs, tiny_model_dir, tmp_path):
    import shutil

    from peft import LoHaConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    engine = make_engine()
    reward = tmp_path / "dora-rm"
    shutil.copytree(single_dirs["dora"], reward)
    (reward / "reward_head.safetensors").write_bytes(b"")  # only its presence matters to the refusal
    with pytest.raises(PixiuError, match=r"reward models score per row only: train it again with lora.method=lora"):
        engine.load_adapter("dora-rm", reward)
    get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoHaConfig(target_modules=["q_proj"])
    ).save_pretrained(tmp_path / "loha")
    with pytest.raises(PixiuError, match=r"peft loha adapter; pixiu serve serves lora.method lora, .*prompt only"):
        engine.load_adapter("loha", tmp_path / "loha")
    misfit = tmp_path / "misfit"
    shutil.copytree(single_dirs["dora"], misfit)
    weights = load_file(misfit / "adapter_model.safetensors")
    save_file({key: torch.cat([value, value]) for key, value in weights.items()}, misfit / "adapter_model.safetensors")
    with pytest.raises(PixiuError, match=r"(?s)does not load onto the served base model.*the base it was trained on"):
        engine.load_adapter("misfit", misfit)
    assert set(engine.adapters.loaded()) == {"law", "medical", "zhihu"}
    assert not hasattr(engine.model, "peft_config") and all(p.requires_grad for p in engine.model.parameters())


def test_http_loads_answers_scores_and_unloads_a_single_adapter(app, single_dirs, pixiu_home, tokenizer, peft_alone):
    import shutil

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    shutil.copytree(single_dirs["prefix"], pixiu_home / "runs" / "prefix")
    loaded = call(app, "POST", "/v1/adapters", json={"name": "p", "path": "runs/prefix"}, headers=admin)
    assert loaded.status_code == 200 and loaded.json()["served"] == "single" and loaded.json()["method"] == "prefix"
    messages = [{"role": "user", "content": PROMPTS[0]}]
    body = {"model": "p", "messages": messages, "max_tokens": 6}
    answer = call(app, "POST", "/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
    tokens = peft_alone("prefix", chat_ids(tokenizer, PROMPTS[0]), 6)[0]
    assert answer == tokenizer.decode(tokens, skip_special_tokens=True)
    scored = call(app, "POST", "/v1/score", json={"model": "p", "messages": messages, "answers": ["yes"]})
    assert scored.status_code == 400 and "no reward head" in scored.json()["error"]["message"]
    assert call(app, "DELETE", "/v1/adapters/p", headers=admin).status_code == 200
    assert call(app, "POST", "/v1/chat/completions", json=body).status_code == 404


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch", sorted(set(ARCHES) - set(ENCODER_DECODER_FAMILIES) - set(RECURRENT_TYPES))
)  # t5/mt5 refuse single adapters and rwkv has no cache for virtual tokens: their cells are tests/serve/test_matrix.py
def test_every_family_serves_every_single_method_as_peft(arch, tmp_path):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from pixiu.families import ia3_modules, lora_targets
    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.engine import Engine
    from pixiu.tiny import create_tiny_model

    base_dir = create_tiny_model(tmp_path / arch, arch=arch)
    model, tokenizer = load_base(str(base_dir))
    stops = stop_token_ids(tokenizer, model)
    engine = Engine(model, stops, max_batch=8, prefill_chunk=5)
    ids, expected = list(range(5, 17)), {}
    for method in SINGLE:
        torch.manual_seed(3)
        fresh = AutoModelForCausalLM.from_pretrained(base_dir)
        config = _config(method)
        if method in ("dora", "adalora"):
            config.target_modules = lora_targets(fresh, "auto")
        for key, names in ia3_modules(arch).items() if method == "ia3" else ():  # pixiu's layers where peft has none
            setattr(config, key, set(names))
        peft_model = get_peft_model(fresh, config)
        with torch.no_grad():
            for parameter in peft_model.parameters():
                if parameter.requires_grad:
                    parameter.add_(0.3 * torch.randn_like(parameter))
        peft_model.save_pretrained(tmp_path / method)
        expected[method] = peft_generate(base_dir, tmp_path / method, ids, 5)
        engine.load_adapter(method, tmp_path / method)
    engine.start()
    try:
        jobs = {name: Collector() for name in [*expected, "base"]}
        requests = {
            name: engine.submit(name, ids, SamplingParams(max_tokens=5, logprobs=0), sink)
            for name, sink in jobs.items()
        }
        for method, (tokens, logprobs) in expected.items():
            assert jobs[method].wait().tokens == tokens, method
            assert [lp.logprob for lp in requests[method].logprobs] == pytest.approx(logprobs, abs=1e-4), method
    finally:
        engine.close()


def test_a_lora_that_trains_embedding_rows_is_served_single_as_peft(make_engine, tiny_model_dir, tokenizer, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    ids = chat_ids(tokenizer, PROMPTS[0])
    config = LoraConfig(r=4, target_modules=["q_proj"], trainable_token_indices=ids[:6])  # as `extend-vocab` trains
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir), config)
    with torch.no_grad():
        for parameter in peft_model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter))
    peft_model.save_pretrained(tmp_path / "rows")
    engine = make_engine()
    assert engine.load_adapter("rows", tmp_path / "rows").served == "single"
    engine.start()
    sink = Collector()
    request = engine.submit("rows", ids, SamplingParams(max_tokens=8, logprobs=0), sink)
    tokens, logprobs = peft_generate(tiny_model_dir, tmp_path / "rows", ids, 8)
    assert sink.wait().tokens == tokens
    assert [lp.logprob for lp in request.logprobs] == pytest.approx(logprobs, abs=1e-4)


def test_bf16_engine_serves_single_adapters_as_peft_in_bf16(tiny_model_dir, single_dirs, tokenizer):
    _serve_singles_in_bf16(tiny_model_dir, single_dirs, tokenizer, torch.device("cpu"))


@pytest.mark.gpu
def test_cuda_bf16_engine_serves_single_adapters_as_peft(tiny_model_dir, single_dirs, tokenizer):
    """The same on a GPU: every tensor the single path makes (prefix keys, prompt embeddings) must be on the device."""
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    _serve_singles_in_bf16(tiny_model_dir, single_dirs, tokenizer, torch.device("cuda", 0))


def _serve_singles_in_bf16(tiny_model_dir, single_dirs, tokenizer, device):
    """A bf16 engine on `device` answers each single adapter (alone in its group) as peft's bf16 `generate` does."""
    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.engine import Engine

    model = load_base(str(tiny_model_dir), dtype=torch.bfloat16, device=device)[0]
    engine = Engine(model, stop_token_ids(tokenizer, model), max_batch=8)
    for method, folder in single_dirs.items():
        engine.load_adapter(method, folder)
    ids = chat_ids(tokenizer, PROMPTS[4])
    jobs = {method: Collector() for method in SINGLE}
    requests = {m: engine.submit(m, ids, SamplingParams(max_tokens=4, logprobs=0), sink) for m, sink in jobs.items()}
    engine.submit("base", ids, SamplingParams(max_tokens=4), Collector())
    engine.start()
    try:
        for method, sink in jobs.items():
            tokens, logprobs = peft_generate(tiny_model_dir, single_dirs[method], ids, 4, torch.bfloat16, device)
            assert sink.wait().tokens == tokens, method
            assert [lp.logprob for lp in requests[method].logprobs] == pytest.approx(logprobs, abs=2e-2), method
    finally:
        engine.close()


def test_groups_take_turns_so_a_short_request_does_not_wait_for_a_long_single_one(single_engine, tokenizer, peft_alone):
    engine = single_engine()  # not started: both requests are admitted in the same step
    ids = chat_ids(tokenizer, PROMPTS[3])
    assert len(peft_alone("ia3", ids, 40)[0]) == 40  # runs the whole 40 tokens (no stop token)
    long, short, seen = Collector(), Collector(), []

    def short_sink(token, finish):
        if finish is not None:
            seen.append(len(long.tokens))  # on the engine thread: how far the long answer had got
        short(token, finish)

    engine.submit("ia3", ids, SamplingParams(max_tokens=40), long)
    engine.submit("law", ids, SamplingParams(max_tokens=3), short_sink)
    engine.start()
    assert short.wait().finish == "length" and len(long.wait().tokens) == 40
    # one token each per step, the mixed batch first: the short one ended in step 3, the long one 2 tokens in
    assert seen == [2]


def test_single_adapters_count_towards_max_adapters_and_are_evicted_like_any(make_engine, single_dirs, tokenizer):
    engine = make_engine(max_adapters=4)  # law, medical, zhihu
    engine.load_adapter("dora", single_dirs["dora"])
    engine.load_adapter("ia3", single_dirs["ia3"])  # evicts law, the least recently used
    engine.load_adapter("prompt", single_dirs["prompt"])  # evicts medical
    engine.load_adapter("prefix", single_dirs["prefix"])  # evicts zhihu
    engine.load_adapter("adalora", single_dirs["adalora"])  # evicts dora: a single one goes like any
    assert list(engine.adapters.loaded()) == ["ia3", "prompt", "prefix", "adalora"]
    assert not engine.adapters.retiring and engine.adapters.lora.capacity == 4 and not engine.adapters.lora._ranks
    with pytest.raises(UnknownModel, match="'dora' was evicted"):
        engine.submit("dora", chat_ids(tokenizer, "hi"), SamplingParams(max_tokens=2), Collector())


def test_virtual_tokens_count_towards_the_context(single_engine, make_app, tokenizer):
    engine = single_engine().start()
    prompt_tokens = len(chat_ids(tokenizer, PROMPTS[3]))
    app = make_app(engine, context=prompt_tokens + 6)  # room for 6 tokens after the prompt; prefix takes 3 of them
    body = {"messages": [{"role": "user", "content": PROMPTS[3]}], "max_tokens": 5}
    assert call(app, "POST", "/v1/chat/completions", json={**body, "model": "law"}).status_code == 200
    refused = call(app, "POST", "/v1/chat/completions", json={**body, "model": "prefix"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    assert (
        call(app, "POST", "/v1/chat/completions", json={**body, "model": "prefix", "max_tokens": 3}).status_code == 200
    )
