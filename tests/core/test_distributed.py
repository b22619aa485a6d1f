"""Data parallelism through accelerate: the row split, the checks before loading, the launcher, and a real
2-process CPU (gloo) run that must give the one-process adapter and resume on one process."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

import toy_domain
from pixiu.checkpoint import list_checkpoints, save_checkpoint
from pixiu.cli import cli
from pixiu.data import IGNORE_INDEX, TokenizedExample
from pixiu.distributed import Ranks, check_devices, launch, launch_command, split_rows, strategy_config
from pixiu.errors import PixiuError
from pixiu_process import PIXIU, TINY_TRAIN


def _example(length: int, answer: int) -> TokenizedExample:
    ids = list(range(length))
    return TokenizedExample(ids, [IGNORE_INDEX] * (length - answer) + ids[length - answer :])


def test_split_rows_is_a_disjoint_token_balanced_partition():
    lengths = [50, 10, 40, 30, 30, 20, 60, 5]
    rows = [6, 0, 2, 3, 4, 5, 1, 7]
    shares = split_rows(lengths, rows, 3)
    assert sorted(r for share in shares for r in share) == sorted(rows)
    tokens = [sum(lengths[r] for r in share) for share in shares]
    assert max(tokens) - min(tokens) <= max(lengths[r] for r in rows)  # greedy longest-first bound
    assert split_rows(lengths, list(reversed(rows)), 3) == shares  # every rank computes the same split


def test_each_rank_takes_its_share_weighted_by_the_global_labelled_count():
    examples = [_example(12, 4), _example(10, 3), _example(8, 8)]
    rows = [0, 1, 2]
    labelled = 4 + 3 + 7  # a labelled first token is no target: nothing before it predicts it
    shares = [
        Ranks(SimpleNamespace(num_processes=2, process_index=rank, is_main_process=rank == 0)).share(examples, rows)
        for rank in (0, 1)
    ]
    assert sorted(shares[0].rows + shares[1].rows) == rows and not set(shares[0].rows) & set(shares[1].rows)
    assert all(s.labelled_tokens == labelled and s.weight == pytest.approx(2 / labelled) for s in shares)
    alone = Ranks().share(examples, rows)
    assert alone.rows == rows and alone.weight == pytest.approx(1 / labelled)


def test_a_rank_without_rows_still_runs_a_zero_weighted_row():
    examples = [_example(12, 4)]
    last = Ranks(SimpleNamespace(num_processes=3, process_index=2, is_main_process=False)).share(examples, [0])
    assert last.rows == [0] and last.weight == 0.0


def test_more_gpus_than_visible_is_refused_before_loading(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(PixiuError, match="--devices 4: this machine has 1 CUDA device visible"):
        check_devices(4, "ddp", "auto")
    check_devices(4, "ddp", "cpu")  # CPU processes on gloo are allowed


@pytest.mark.parametrize("strategy", ["fsdp", "deepspeed-zero2", "deepspeed-zero3"])
def test_sharded_strategies_need_cuda(strategy):
    with pytest.raises(PixiuError, match=f"train.strategy={strategy} needs CUDA GPUs"):
        check_devices(2, strategy, "cpu")


def test_deepspeed_missing_names_the_extra(monkeypatch):
    import importlib.util

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 8)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "deepspeed" else real(name))
    with pytest.raises(PixiuError, match=r"pip install 'pixiu\[deepspeed\]'"):
        check_devices(2, "deepspeed-zero3", "auto")


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"), ("deepspeed-zero2", "DEEPSPEED"), ("deepspeed-zero3", "DEEPSPEED")],
)
def test_each_strategy_ships_an_accelerate_config(strategy, kind):
    config = yaml.safe_load(strategy_config(strategy).read_text(encoding="utf-8"))
    assert config["distributed_type"] == kind
    command = launch_command(["domain", "train", "law"], 4, strategy)
    assert command[command.index("--config_file") + 1] == str(strategy_config(strategy))
    assert command[command.index("--num_processes") + 1] == "4" and command[-4:] == ["pixiu", "domain", "train", "law"]


def test_a_dead_rank_stops_the_run_naming_the_newest_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 4, {"w": torch.zeros(1)}, {"step": 4}, keep=2)
    resume = f"pixiu domain train law --resume --output {tmp_path} --devices 2"
    with pytest.raises(PixiuError) as failed:
        launch([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path, resume)
    message = str(failed.value)
    assert "exited with status 3" in message and str(list_checkpoints(tmp_path)[-1]) in message and resume in message


def _train(*args: str):
    return CliRunner().invoke(cli, ["domain", "train", "toy", *args], catch_exceptions=False)


def _adapter(run_dir):
    return load_file(str(run_dir / "adapter_model.safetensors"))


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_two_cpu_processes_train_the_one_process_adapter_and_resume_on_one(
    toy_plugin, tiny_model_dir, tmp_path, pixiu_home
):
    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 30)
    same = ["--max-steps", "3", "--set", "train.save_every=2", "--set", "train.lr=1e-2", "--set", "train.threads=1"]
    given = ["--base", str(tiny_model_dir), "--data", str(data), *TINY_TRAIN, *same]
    alone = _train(*given, "--output", str(tmp_path / "one"))
    assert alone.exit_code == 0, alone.output

    two = tmp_path / "two"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PIXIU_LOAD_PLUGINS": "toy"}
    launched = subprocess.run(
        [*PIXIU, "domain", "train", "toy", *given, "--output", str(two), "--devices", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "exact_match" in launched.stdout  # rank 0 evaluated and reported; the other rank printed nothing
    # The split changes only the order of float sums (per-row losses, then the 2-way gradient all-reduce), so
    # fp32 rounding differs by ~1e-7 relative per step; three AdamW steps at lr 1e-2 keep that far under 1e-4.
    difference = _max_difference(_adapter(tmp_path / "one"), _adapter(two))
    assert difference < 1e-4, f"2 processes vs 1: max abs difference {difference:.3g}"
    assert sum(1 for _ in (two / "train_log.jsonl").open()) == 3  # one log, written by rank 0 alone

    newest = list_checkpoints(two)[-1]
    assert newest.name.endswith("3")
    shutil.rmtree(newest)  # as if the run had died after step 2's checkpoint
    (two / "adapter_model.safetensors").unlink()
    resumed = _train("--resume", "--output", str(two), "--devices", "1")
    assert resumed.exit_code == 0, resumed.output
    difference = _max_difference(_adapter(tmp_path / "one"), _adapter(two))
    assert difference < 1e-4, f"resumed on 1 process vs 1 process throughout: max abs difference {difference:.3g}"


def test_under_a_users_launcher_every_process_needs_one_output(toy_plugin, monkeypatch):
    monkeypatch.setenv("LOCAL_RANK", "0")
    refused = CliRunner().invoke(cli, ["domain", "train", "toy"])
    assert refused.exit_code == 2 and "pass --output DIR" in refused.output


def test_sharded_strategies_keep_the_adapter_of_the_gathered_state(tiny_model_dir, tmp_path):
    from pixiu.config import LoraArgs
    from pixiu.lora import adapter_state, attach_lora
    from pixiu.models import load_base

    lora = LoraArgs().model_dump(include={"r", "alpha", "dropout", "target_modules"})
    model = attach_lora(load_base(str(tiny_model_dir))[0], **lora)
    for name, weight in model.named_parameters():
        if "lora_B" in name:  # peft starts B at zero; make the adapter non-trivial so the comparison means something
            torch.nn.init.normal_(weight)
    whole = {f"model.{k}": v for k, v in model.state_dict().items()}  # what get_state_dict of the wrapper returns
    gather = SimpleNamespace(num_processes=2, is_main_process=True, get_state_dict=lambda prepared: whole)
    ranks = Ranks(gather, "deepspeed-zero3")
    gathered = ranks.adapter_state(model, adapter_state)
    expected = adapter_state(model)
    assert gathered is not None and _max_difference(gathered, expected) == 0.0
    ranks.save_adapter(model, tmp_path)
    assert _max_difference(_adapter(tmp_path), expected) == 0.0
    assert not ranks.can_evaluate and ranks.optimizer_state(torch.optim.SGD(model.parameters(), lr=1)) is None


def _launch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PIXIU_LOAD_PLUGINS": "toy"}
    command = [*PIXIU, "domain", "train", "toy", *args, "--devices", "2"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


def _log(run_dir) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("method", ["rm", "dpo", "kto"])
def test_two_cpu_processes_train_the_pair_methods_like_one(method, toy_plugin, tiny_model_dir, tmp_path, pixiu_home):
    data = toy_domain.write_toy_pairs(tmp_path / "pairs.jsonl", 30)
    same = ["--max-steps", "3", "--set", "train.lr=1e-2", "--set", "train.threads=1", "--set", "data.max_seq_len=64"]
    given = ["--method", method, "--base", str(tiny_model_dir), "--data", str(data), *TINY_TRAIN, *same]
    alone = _train(*given, "--output", str(tmp_path / "one"))
    assert alone.exit_code == 0, alone.output
    two = tmp_path / "two"
    launched = _launch(*given, "--output", str(two))
    assert launched.returncode == 0, launched.stdout + launched.stderr
    # each process trains its share of every step's pairs and adds its part of the loss's gradient to the others'
    difference = _max_difference(_adapter(tmp_path / "one"), _adapter(two))
    # KTO's loss moves against a batch-wide KL estimate, and AdamW's first steps (about lr = 1e-2 each, whatever a
    # gradient's size) turn the rounding of a small gradient into a visible step: 2.4e-5 with peft's LoRA layers,
    # 1.6e-4 with pixiu's fused ones (which sum in another order), under 2% of one step either way
    tolerance = 5e-4 if method == "kto" else 1e-4
    assert difference < tolerance, f"{method}, 2 processes vs 1: max abs difference {difference:.3g}"
    if method == "rm":  # the scalar head trains beside the adapter, and is summed over the processes too
        one_head, two_head = (load_file(str(d / "reward_head.safetensors")) for d in (tmp_path / "one", two))
        # (its bias is left out: Bradley-Terry compares two scores, so the bias's gradient is 0 up to rounding, and
        # AdamW turns that rounding noise into steps of about lr either way)
        head = (one_head["weight"] - two_head["weight"]).abs().max().item()
        assert head < 1e-4, f"reward head, 2 processes vs 1: max abs difference {head:.3g}"
    one_log, two_log = _log(tmp_path / "one"), _log(two)
    assert len(two_log) == 3  # one log, written by rank 0, of the whole steps' figures
    for row_one, row_two in zip(one_log, two_log, strict=True):
        assert row_two["loss"] == pytest.approx(row_one["loss"], rel=1e-4, abs=1e-6)
        assert row_two["tokens"] == row_one["tokens"]


@pytest.mark.parametrize("method", ["grpo", "ppo"])
def test_two_cpu_processes_train_the_sampling_methods_and_resume_on_one(
    method, toy_plugin, tiny_model_dir, tmp_path, pixiu_home
):
    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 30)
    sampling = {
        "grpo": ["grpo.group_size=4", "grpo.max_new_tokens=8"],
        "ppo": ["ppo.reward=domain", "ppo.max_new_tokens=8"],
    }
    settings = [
        f"--set={s}" for s in [*sampling[method], "train.threads=1", "train.save_every=2", "train.batch_tokens=1024"]
    ]
    given = ["--method", method, "--base", str(tiny_model_dir), "--data", str(data), *TINY_TRAIN, *settings]
    two = tmp_path / "two"
    launched = _launch(*given, "--max-steps", "3", "--output", str(two))
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert f"registered as 'toy-{method}'" in launched.stdout
    log = _log(two)
    assert [row["step"] for row in log] == [1, 2, 3]
    # a step of two or more prompts is shared by both processes; a step of one leaves the other a stand-in
    assert max(row["prompts"] for row in log) >= 2
    assert all(math.isfinite(row["loss"]) and 0.0 <= row["reward"] <= 1.0 for row in log)

    newest = list_checkpoints(two)[-1]
    shutil.rmtree(newest)  # as if the run had died after step 2's checkpoint
    (two / "adapter_model.safetensors").unlink()
    resumed = _train("--resume", "--output", str(two), "--devices", "1")
    assert resumed.exit_code == 0, resumed.output
    assert [row["step"] for row in _log(two)] == [1, 2, 3] and (two / "adapter_model.safetensors").is_file()


def test_a_reward_that_fails_in_another_process_stops_every_process(tmp_path):
    from pixiu.rewards import RewardError, rollout_scores

    saved: list[int] = []
    other_failed = SimpleNamespace(is_main=True, sum=lambda *values: [1.0])  # the all-reduce counts one failure
    with pytest.raises(PixiuError, match="another training process's reward failed before step 4"):
        rollout_scores(
            lambda: [0.5],
            ranks=other_failed,
            domain=SimpleNamespace(name="toy"),
            step=3,
            run_dir=tmp_path,
            save=saved.append,
            since=0,
            save_every=2,
        )
    assert saved == [3]  # rank 0 keeps the step finished since the last checkpoint, as one process would

    def failing() -> list[float]:
        raise RewardError("toy's reward raised ValueError")

    alone = Ranks()
    with pytest.raises(PixiuError, match="toy's reward raised ValueError") as stopped:
        rollout_scores(
            failing,
            ranks=alone,
            domain=SimpleNamespace(name="toy"),
            step=2,
            run_dir=tmp_path,
            save=saved.append,
            since=2,
            save_every=2,
        )
    assert "--resume --output" in str(stopped.value) and saved == [3]  # nothing new finished since step 2
