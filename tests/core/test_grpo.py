"""GRPO (`train.method: grpo`) with a domain's reward: sampling, a run that raises the held-out reward, exact
resume after SIGKILL, a reward that raises, a domain without one, starting from a trained adapter, the KL term."""

import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixiu.config import load_config
from pixiu.errors import ConfigError, PixiuError
from pixiu.generate import prompt_ids, sample_completions, stop_token_ids
from pixiu.recipes.grpo import run
from pixiu.registry import list_adapters
from toy_domain import TOY, write_toy_data

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "train.method=grpo",
    "data.max_seq_len=96",
    "train.batch_tokens=4096",
    "data.eval_records=8",
    "eval.max_new_tokens=8",
    "train.lr=3e-2",
    "train.warmup_steps=1",
    "grpo.max_new_tokens=12",
    "grpo.group_size=8",
]


def grpo_config(base, *extra):
    return load_config(overrides=[*SMALL, *extra], values={"base": str(base)})


def test_samples_come_in_groups_and_end_at_the_stop_token(tiny_model_dir):
    from pixiu.models import load_base

    model, tokenizer = load_base(str(tiny_model_dir))
    encoded = prompt_ids(tokenizer, [[{"role": "user", "content": "红色？"}], [{"role": "user", "content": "绿"}]], 64)
    torch.manual_seed(0)
    first = sample_completions(model, tokenizer, encoded, samples=3, max_new_tokens=6, temperature=1.0)
    torch.manual_seed(0)
    again = sample_completions(model, tokenizer, encoded, samples=3, max_new_tokens=6, temperature=1.0)
    assert first == again and len(first) == 6  # seeded: a resumed step samples what the first attempt did
    stops = set(stop_token_ids(tokenizer, model))
    for completion in first:
        assert 1 <= len(completion) <= 6 and not stops & set(completion[:-1])  # nothing after a stop token
    assert len({tuple(c) for c in first}) > 1  # sampled, not greedy


def test_grpo_raises_the_held_out_reward_and_registers_domain_grpo(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    run_dir = tmp_path / "run"
    summary = run(TOY, grpo_config(tiny_model_dir, "train.max_steps=30", "train.save_every=10"), data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 31))
    assert all(0 <= r["reward"] <= 1 and r["prompts"] >= 1 and r["kl"] is None for r in log)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary.metrics == metrics and metrics["records"] == 8 and metrics["train"]["method"] == "grpo"
    # the tiny random model's greedy answers start with no Chinese at all; GRPO on the share of it moves them
    assert metrics["adapter"]["reward"] > metrics["base"]["reward"]
    assert {"exact_match", "reward"} <= set(metrics["adapter"])
    assert {"predictions.jsonl", "eval_split.jsonl", "adapter_model.safetensors"} <= {p.name for p in run_dir.iterdir()}
    entry = list_adapters()[0]
    assert (entry.name, entry.domain) == ("toy-grpo", "toy")


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_a_sigkilled_grpo_run_resumes_exactly(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    common = ["--base", str(tiny_model_dir), "--data", str(data)]
    extra = ["train.max_steps=7", "train.save_every=3", "data.eval_records=0", "grpo.beta=0.1", "lora.dropout=0.1"]
    settings = [f"--set={s}" for s in [*SMALL, *extra]]
    straight = train_in_child(*common, "--run-dir", str(tmp_path / "straight"), *settings)
    assert straight.returncode == 0, straight.stderr
    broken = tmp_path / "broken"
    killed = train_in_child(*common, "--run-dir", str(broken), "--die-at-step", "6", *settings)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = train_in_child(*common, "--run-dir", str(broken), "--resume", *settings)
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 3" in " ".join(resumed.stderr.split())
    expected_log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    resumed_log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in resumed_log] == [r["reward"] for r in expected_log]  # the same samples
    assert [r["loss"] for r in resumed_log] == pytest.approx([r["loss"] for r in expected_log], rel=1e-5, abs=1e-7)
    assert all(r["kl"] >= 0 for r in resumed_log)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(broken / "adapter_model.safetensors"))
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key


def test_a_raising_reward_stops_the_run_by_plugin_name_with_a_resumable_checkpoint(tiny_model_dir, tmp_path):
    calls = [0]

    def flaky(prompt, answer, reference):
        calls[0] += 1
        if calls[0] > 8 * 4 * 5:  # fine for the first steps, then a bug
            raise KeyError("charges")
        return 0.5

    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    run_dir = tmp_path / "run"
    config = grpo_config(tiny_model_dir, "train.max_steps=40", "train.save_every=100", "data.eval_records=0")
    with pytest.raises(PixiuError) as caught:
        run(dataclasses.replace(TOY, reward=flaky), config, data, run_dir)
    message = str(caught.value)
    assert "reward function of domain 'toy' (plugin toy_domain) raised KeyError" in message
    assert f"--resume --output {run_dir}" in message
    (checkpoint,) = (run_dir / "checkpoints").iterdir()
    stopped = int(checkpoint.name.split("-")[1])
    assert stopped >= 1 and f"before step {stopped + 1}" in message  # every finished step is kept


def test_a_domain_without_a_reward_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(PixiuError, match=r"domain 'toy' \(toy_domain\) has no reward function"):
        run(dataclasses.replace(TOY, reward=None), grpo_config("never-loaded"), tmp_path / "none.jsonl", tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_grpo_starts_from_a_trained_adapter_of_the_same_base(tiny_model_dir, tmp_path):
    from pixiu.recipes import lora_sft

    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    sft_overrides = ["data.max_seq_len=96", "train.batch_tokens=512", "data.eval_records=0", "train.max_steps=2"]
    sft_overrides.append("train.lr=5e-2")  # an adapter far enough from the base that the KL to the base is not 0
    sft = lora_sft.run(
        TOY, load_config(overrides=sft_overrides, values={"base": str(tiny_model_dir)}), data, tmp_path / "sft"
    )
    config = grpo_config(
        tiny_model_dir,
        "train.max_steps=1",
        "data.eval_records=0",
        f"train.init_adapter={sft.run_dir}",
        "grpo.beta=0.04",
    )
    summary = run(TOY, config, data, tmp_path / "grpo")
    assert summary.metrics["train"]["init_adapter"] == str(sft.run_dir)
    # the KL's reference is the adapter the policy starts as, so before the first update the two are one model
    first = json.loads((tmp_path / "grpo" / "train_log.jsonl").read_text().splitlines()[0])
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(PixiuError, match=r"was trained on the base .*pass --base"):
        run(TOY, grpo_config("another-base", f"train.init_adapter={sft.run_dir}"), data, tmp_path / "mismatch")


def test_an_answer_budget_that_leaves_no_room_for_the_prompt_is_a_config_error():
    with pytest.raises(ConfigError, match=r"grpo\.max_new_tokens \(96\) must be < data\.max_seq_len \(96\)"):
        load_config(overrides=["train.method=grpo", "data.max_seq_len=96", "grpo.max_new_tokens=96"])
