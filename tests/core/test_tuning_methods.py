"""`lora.method`: every tuning method trains 3 steps on the tiny llama, saves, reloads, evaluates, and is served (per
row, or one adapter at a time through peft) as peft serves it, or refused by the engine with a message naming the
method; resume is exact for representative methods."""

from __future__ import annotations

import json
import threading

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from pixiu.config import load_config
from pixiu.errors import ConfigError, PixiuError
from pixiu.evaluation import evaluate_domain
from pixiu.families import lora_targets
from pixiu.generate import stop_token_ids
from pixiu.methods import INITIAL_ADAPTER, PER_ROW, PROMPT_LEARNING, SERVED_SINGLE, WHOLE_MODEL, adapter_method
from pixiu.models import load_base
from pixiu.recipes.lora_sft import run
from pixiu.serve.engine import Engine
from pixiu.serve.request import SamplingParams
from toy_domain import TOY, write_toy_data

SMALL = [
    "data.max_seq_len=64",
    "train.batch_tokens=256",
    "data.eval_records=2",
    "eval.max_new_tokens=2",
    "eval.limit=1",
    "eval.general=false",
    "train.lr=1e-2",
    "train.max_steps=3",
    "train.save_every=3",
    "train.warmup_steps=0",
    "lora.num_virtual_tokens=4",
    "lora.freeze_layers=1",
]
SLOW = ("olora", "loraplus", "prompt", "freeze")
"""Methods whose serving path another in the matrix already covers (olora as pissa, loraplus as lora, prompt as
prefix, freeze as full): slow, so the default matrix stays within the CI budget."""
METHODS = [
    pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m
    for m in (*PER_ROW, "dora", "ia3", "adalora", *PROMPT_LEARNING, *WHOLE_MODEL)
]


def config_for(base, method, *extra):
    return load_config(overrides=[*SMALL, f"lora.method={method}", *extra], values={"base": str(base)})


class Tokens:
    """A sink that keeps the generated tokens and signals the end."""

    def __init__(self):
        self.tokens: list[int] = []
        self.done = threading.Event()

    def __call__(self, token, finish):
        if token is None:
            self.done.set()
        else:
            self.tokens.append(token)


def served_tokens(base_dir, name, folder, prompt_ids, max_tokens=3):
    """Greedy tokens of one request to `name` through the serving engine."""
    model, tokenizer = load_base(str(base_dir))
    engine = Engine(model, stop_token_ids(tokenizer, model), max_batch=2, max_waiting=4)
    engine.load_adapter(name, folder, domain="toy")
    engine.start()
    try:
        sink = Tokens()
        engine.submit(name, prompt_ids, SamplingParams(max_tokens=max_tokens), sink)
        assert sink.done.wait(30)
        return sink.tokens
    finally:
        engine.close()


@torch.inference_mode()
def peft_tokens(base_dir, folder, prompt_ids, max_tokens=3):
    """Greedy tokens of the same request through peft on the original base: the reference."""
    model, tokenizer = load_base(str(base_dir))
    peft_model = PeftModel.from_pretrained(model, str(folder)).eval()
    ids = torch.tensor([prompt_ids])
    out = peft_model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=max_tokens,
        eos_token_id=stop_token_ids(tokenizer, model),
        pad_token_id=tokenizer.pad_token_id,
    )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("method", METHODS)
def test_method_trains_saves_evaluates_and_serves_or_is_refused(method, tiny_model_dir, tmp_path, toy_plugin):
    data = write_toy_data(tmp_path / "toy.jsonl", 12)
    run_dir = tmp_path / "run"
    summary = run(TOY, config_for(tiny_model_dir, method), data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3] and all(row["loss"] > 0 for row in log)
    assert "adapter" in summary.metrics and adapter_method(run_dir) == method
    names = {p.name for p in run_dir.iterdir()}
    if method in WHOLE_MODEL:  # a plain model folder that --base accepts
        assert {"config.json", "model.safetensors", "tokenizer_config.json"} <= names
        assert "adapter_config.json" not in names
        tuned = AutoModelForCausalLM.from_pretrained(run_dir)
        original = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        changed = {n for n, p in tuned.named_parameters() if not torch.equal(p, original.get_parameter(n))}
        layers = {n.split(".")[2] for n in changed if n.startswith("model.layers.")}
        assert layers == ({"1"} if method == "freeze" else {"0", "1"})  # the tiny llama has two layers
    else:
        config = json.loads((run_dir / "adapter_config.json").read_text())
        assert config["peft_type"] == {"ia3": "IA3", "prefix": "PREFIX_TUNING", "prompt": "PROMPT_TUNING"}.get(
            method, "ADALORA" if method == "adalora" else "LORA"
        )
        assert config.get("use_dora", False) == (method == "dora")
        assert config.get("use_rslora", False) == (method == "rslora")
    report = evaluate_domain("toy", adapter=str(run_dir), limit=1)  # reloaded from disk
    assert report["records"] == 1 and "adapter" in report["scores"]
    prompt = [5, 6, 7, 8, 9]
    if method in (*PER_ROW, *SERVED_SINGLE):
        assert served_tokens(tiny_model_dir, "toy", run_dir, prompt) == peft_tokens(tiny_model_dir, run_dir, prompt)
    else:
        with pytest.raises(PixiuError, match=f"lora.method={method}.*pixiu serve --base"):
            served_tokens(tiny_model_dir, "toy", run_dir, prompt)


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
@pytest.mark.parametrize("method", ["rslora", "pissa", "loraplus", "ia3", "prefix", "adalora", "freeze"])
def test_interrupted_run_resumes_to_the_same_weights(method, tiny_model_dir, tmp_path, monkeypatch):
    """A run stopped after checkpoint 2 and resumed ends with the weights of one run straight through (for
    adalora this includes its importance averages and rank pattern, kept in the checkpoint)."""
    import pixiu.recipes.lora_sft as recipe

    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    config = config_for(tiny_model_dir, method, "train.max_steps=6", "train.save_every=2", "data.eval_records=0")
    run(TOY, config, data, tmp_path / "straight")
    save = recipe.save_checkpoint

    def save_then_stop(run_dir, step, *args, **kwargs):
        save(run_dir, step, *args, **kwargs)
        if step == 2:
            raise Stopped

    monkeypatch.setattr(recipe, "save_checkpoint", save_then_stop)
    with pytest.raises(Stopped):
        run(TOY, config, data, tmp_path / "resumed")
    monkeypatch.setattr(recipe, "save_checkpoint", save)
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


def test_ia3_on_a_family_peft_has_no_ia3_layers_for_is_refused_by_name(tmp_path):
    from pixiu.methods import attach_method
    from pixiu.tiny import create_tiny_model

    base = AutoModelForCausalLM.from_pretrained(create_tiny_model(tmp_path / "glm", arch="glm"))
    config = load_config(overrides=["lora.method=ia3"], values={"base": "unused"})
    with pytest.raises(PixiuError, match=r"lora.method=ia3 .* model_type 'glm'; use lora.method lora"):
        attach_method(base, config.lora, 3)
