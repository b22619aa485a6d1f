"""Training in bf16 and with gradient checkpointing on the CPU: dtypes, metrics, and resume across precisions."""

import json

import pytest
import torch
from safetensors.torch import load_file

import pixiu.recipes.lora_sft as recipe
import pixiu.training as training
from interrupts import interrupt_after_saving
from pixiu.config import load_config
from pixiu.lora import attach_lora
from pixiu.models import load_base
from toy_domain import TOY, write_toy_data, write_toy_pairs

SMALL = [
    "data.max_seq_len=64",
    "train.batch_tokens=256",
    "eval.max_new_tokens=2",
    "train.lr=1e-3",
    "train.device=cpu",
]


def config(base, *extra):
    return load_config(overrides=[*SMALL, *extra], values={"base": str(base)})


def losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture
def attached(monkeypatch):
    """The LoRA model each run trains, kept for inspection."""
    models = []

    def keep(base, **lora):
        models.append(attach_lora(base, **lora))
        return models[-1]

    monkeypatch.setattr(training, "attach_lora", keep)
    return models


def test_attach_lora_on_a_bf16_base_keeps_lora_weights_fp32(tiny_model_dir):
    base, _ = load_base(str(tiny_model_dir), dtype=torch.bfloat16)
    model = attach_lora(base, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    trainable = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert trainable == {torch.float32} and frozen == {torch.bfloat16}


def test_bf16_training_on_the_cpu_records_device_precision_and_memory(tiny_model_dir, tmp_path, attached):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    run_dir = tmp_path / "run"
    recipe.run(
        TOY, config(tiny_model_dir, "train.precision=bf16", "train.max_steps=8", "data.eval_records=2"), data, run_dir
    )
    (model,) = attached
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    assert {p.dtype for p in model.parameters() if not p.requires_grad} == {torch.bfloat16}
    trained = losses(run_dir)
    assert all(torch.isfinite(torch.tensor(trained))) and trained[-1] < trained[0]
    metrics = json.loads((run_dir / "metrics.json").read_text())["train"]
    assert metrics["device"] == "cpu" and metrics["precision"] == "bf16" and metrics["quantize"] is None
    assert metrics["gradient_checkpointing"] is False
    assert metrics["peak_memory"]["kind"] == "peak_rss" and metrics["peak_memory"]["gib"] > 0
    assert {v.dtype for v in load_file(str(run_dir / "adapter_model.safetensors")).values()} == {torch.float32}


def test_default_precision_on_the_cpu_is_fp32(tiny_model_dir, tmp_path, attached):
    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    recipe.run(TOY, config(tiny_model_dir, "train.max_steps=1", "data.eval_records=0"), data, tmp_path / "run")
    assert {p.dtype for p in attached[0].parameters()} == {torch.float32}
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]["precision"] == "fp32"


def test_a_bf16_run_resumes_exactly(tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    settings = config(
        tiny_model_dir, "train.precision=bf16", "train.max_steps=6", "train.save_every=3", "data.eval_records=0"
    )
    recipe.run(TOY, settings, data, tmp_path / "straight")
    with monkeypatch.context() as patch:
        interrupt_after_saving(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            recipe.run(TOY, settings, data, tmp_path / "broken")
    recipe.run(TOY, settings, data, tmp_path / "broken", resume=True)
    assert losses(tmp_path / "broken") == pytest.approx(losses(tmp_path / "straight"), rel=1e-5)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(tmp_path / "broken" / "adapter_model.safetensors"))
    assert all(actual[k].allclose(expected[k], atol=1e-6) for k in expected)


def test_a_bf16_checkpoint_resumes_in_fp32_with_checkpointing(tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    common = ["train.max_steps=4", "train.save_every=2", "data.eval_records=0"]
    with monkeypatch.context() as patch:
        interrupt_after_saving(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            recipe.run(TOY, config(tiny_model_dir, "train.precision=bf16", *common), data, tmp_path / "run")
    switched = config(tiny_model_dir, "train.precision=fp32", "train.gradient_checkpointing=true", *common)
    recipe.run(TOY, switched, data, tmp_path / "run", resume=True)
    assert len(losses(tmp_path / "run")) == 4
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]
    assert metrics["precision"] == "fp32" and metrics["gradient_checkpointing"] is True


def test_gradient_checkpointing_recomputes_layers_and_trains_the_same(tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    calls: dict[tuple[str, int], int] = {}

    def counting(base, **lora):
        model = attach_lora(base, **lora)
        # the layer's own hooks sit outside the checkpoint, its modules' inside; a pre-hook, since the recompute
        # stops as soon as it has every tensor the backward needs, before the module returns
        for index, layer in enumerate(base.model.layers):
            key = (run_name, index)
            layer.mlp.register_forward_pre_hook(lambda *_, key=key: calls.__setitem__(key, calls.get(key, 0) + 1))
        return model

    monkeypatch.setattr(training, "attach_lora", counting)
    runs = {"plain": ["train.gradient_checkpointing=false"], "checkpointed": ["train.gradient_checkpointing=true"]}
    runs["every_other"] = ["train.gradient_checkpointing=true", "train.recompute_every=2"]
    for run_name, settings in runs.items():
        recipe.run(
            TOY,
            config(tiny_model_dir, *settings, "train.max_steps=3", "data.eval_records=0"),
            data,
            tmp_path / run_name,
        )
    # each step's checkpointed layers run again in backward; with recompute_every=2 only the first of the two
    assert calls == {
        ("plain", 0): 3, ("plain", 1): 3,
        ("checkpointed", 0): 6, ("checkpointed", 1): 6,
        ("every_other", 0): 6, ("every_other", 1): 3,
    }  # fmt: skip
    expected = load_file(str(tmp_path / "plain" / "adapter_model.safetensors"))
    for run_name in ("checkpointed", "every_other"):
        assert losses(tmp_path / run_name) == pytest.approx(losses(tmp_path / "plain"), rel=1e-5)
        actual = load_file(str(tmp_path / run_name / "adapter_model.safetensors"))
        assert all(actual[k].allclose(expected[k], atol=1e-6) for k in expected)
    assert json.loads((tmp_path / "every_other" / "metrics.json").read_text())["train"]["recompute_every"] == 2


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("rm", []),
        ("dpo", []),
        ("kto", []),
        ("grpo", ["grpo.group_size=2", "grpo.max_new_tokens=4", "grpo.beta=0.04"]),
        ("ppo", ["ppo.reward=domain", "ppo.max_new_tokens=4"]),
    ],
)
def test_every_alignment_method_trains_in_bf16_with_gradient_checkpointing(method, extra, tiny_model_dir, tmp_path):
    from pixiu.cli.domain import RECIPES

    recipe_module = __import__(f"pixiu.recipes.{RECIPES[method]}", fromlist=["run"])
    pairs = method in ("rm", "dpo", "kto")
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 20) if pairs else write_toy_data(tmp_path / "toy.jsonl", 20)
    settings = [f"train.method={method}", "train.precision=bf16", "train.gradient_checkpointing=true", *extra]
    run_dir = tmp_path / "run"
    recipe_module.run(TOY, config(tiny_model_dir, *settings, "train.max_steps=2", "data.eval_records=4"), data, run_dir)
    assert all(torch.isfinite(torch.tensor(losses(run_dir))))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train"]["precision"] == "bf16" and metrics["train"]["gradient_checkpointing"] is True
    assert metrics["records"] == 4  # the held-out evaluation ran on the bf16 base too
    saved = load_file(str(run_dir / "adapter_model.safetensors"))
    assert {v.dtype for v in saved.values()} == {torch.float32}  # LoRA weights train and save in fp32
    if method == "rm":
        assert {v.dtype for v in load_file(str(run_dir / "reward_head.safetensors")).values()} == {torch.float32}
