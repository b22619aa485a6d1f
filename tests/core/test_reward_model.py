"""Reward models (`train.method: rm`): Bradley-Terry on the head's scores, the score read at the last answer token
whatever the padding, a separable preference learned and reproduced by `load_reward_model`, exact resume of
adapter and head after SIGKILL, and the command line."""

import json
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixiu.config import load_config
from pixiu.errors import ConfigError, PixiuError
from pixiu.preference import collate_pairs, load_preferences, read_pairs, tokenize_pairs
from pixiu.recipes.reward_model import run
from pixiu.registry import list_adapters
from pixiu.reward_model import HEAD_FILE, build_head, last_answer_positions, load_reward_model, pair_loss, score_rows
from toy_domain import TOY, write_toy_pairs

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "train.method=rm",
    "data.max_seq_len=64",
    "train.batch_tokens=1024",
    "data.eval_records=20",
    "train.lr=5e-3",
    "train.warmup_steps=5",
]


def test_the_loss_is_bradley_terry_on_chosen_minus_rejected_scores():
    loss, margins = pair_loss(torch.tensor([2.0, 0.0, 1.0, 1.0]))  # chosen 2, 0; rejected 1, 1
    assert margins.tolist() == [1.0, -1.0]
    expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(1.0))) / 2
    assert loss.item() == pytest.approx(expected)


def test_the_last_answer_position_is_the_last_labelled_one():
    labels = torch.tensor([[-100, -100, 5, 6, -100, -100], [-100, 7, 8, 9, 10, 11]])
    assert last_answer_positions(labels).tolist() == [3, 5]


def test_a_rows_score_reads_its_last_answer_token_whatever_padding_follows(tiny_model_dir, tmp_path):
    from pixiu.lora import attach_lora
    from pixiu.models import load_base

    base, tokenizer = load_base(str(tiny_model_dir))
    model = attach_lora(base, r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]).eval()
    head = build_head(base.config.hidden_size, seed=0)
    pairs = load_preferences(write_toy_pairs(tmp_path / "pairs.jsonl", 12), TOY).items
    tokenized, _ = tokenize_pairs(tokenizer, pairs, 64)
    short = min(range(len(tokenized)), key=lambda i: len(tokenized[i].chosen))
    long = max(range(len(tokenized)), key=lambda i: len(tokenized[i].chosen))
    assert len(tokenized[short].chosen) < len(tokenized[long].chosen)  # so the short row is padded in the batch
    pad_id = tokenizer.pad_token_id
    with torch.no_grad():
        alone = score_rows(model, head, collate_pairs(tokenized, [short], pad_id))
        padded = score_rows(model, head, collate_pairs(tokenized, [short, long], pad_id))
    assert padded[[0, 2]].tolist() == pytest.approx(alone.tolist(), abs=1e-5)  # rows: chosen s, l; rejected s, l
    assert alone[0].item() != pytest.approx(alone[1].item())  # the head does read the answer


def test_rm_learns_a_separable_preference_scores_it_again_when_loaded_and_registers_toy_rm(tiny_model_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 120)
    run_dir = tmp_path / "run"
    config = load_config(
        overrides=[*SMALL, "train.max_steps=60", "train.save_every=30"], values={"base": str(tiny_model_dir)}
    )
    summary = run(TOY, config, data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert {"loss", "accuracy", "margin", "pairs", "tokens", "seconds", "lr"} <= log[0].keys()
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=0.05)  # a small head: every score starts near 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary.metrics == metrics and metrics["records"] == 20 and "base" not in metrics
    assert metrics["adapter"]["accuracy"] > 90 and metrics["adapter"]["margin"] > 0
    assert metrics["train"]["method"] == "rm" and metrics["train"]["pairs"] == 100
    assert {"adapter_model.safetensors", "adapter_config.json", HEAD_FILE, "pixiu_run.yaml", "loss.png"} <= {
        p.name for p in run_dir.iterdir()
    }
    entry = list_adapters()[0]
    assert (entry.name, entry.domain, entry.path) == ("toy-rm", "toy", str(run_dir.resolve()))

    held_out = read_pairs(run_dir / "eval_pairs.jsonl")
    reward = load_reward_model("toy-rm", device="cpu")
    chosen = reward.score_batch([(p.prompt, p.chosen) for p in held_out])
    rejected = reward.score_batch([(p.prompt, p.rejected) for p in held_out], batch_size=3)
    wins = [c > r for c, r in zip(chosen, rejected, strict=True)]
    assert 100 * sum(wins) / len(wins) == pytest.approx(metrics["adapter"]["accuracy"])
    margin = sum(c - r for c, r in zip(chosen, rejected, strict=True)) / len(held_out)
    assert margin == pytest.approx(metrics["adapter"]["margin"], abs=1e-3)
    first = held_out[0]
    assert load_reward_model(run_dir).score(first.prompt, first.chosen) == pytest.approx(chosen[0], abs=1e-5)


def test_loading_a_run_without_a_head_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(PixiuError, match="not a reward model"):
        load_reward_model(tmp_path)


def test_rm_on_several_devices_takes_ddp_and_refuses_sharding():
    assert load_config(overrides=["train.method=rm", "train.devices=2"]).train.devices == 2
    with pytest.raises(ConfigError, match=r"train\.method=rm trains on several devices with train\.strategy=ddp"):
        load_config(overrides=["train.method=rm", "train.devices=2", "train.strategy=fsdp"])


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_a_sigkilled_rm_run_resumes_exactly_adapter_and_head(tiny_model_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 40)
    common = ["--base", str(tiny_model_dir), "--data", str(data)]
    settings = [f"--set={s}" for s in [*SMALL, "train.max_steps=8", "train.save_every=3", "data.eval_records=0"]]
    straight = train_in_child(*common, "--run-dir", str(tmp_path / "straight"), *settings)
    assert straight.returncode == 0, straight.stderr
    broken = tmp_path / "broken"
    killed = train_in_child(*common, "--run-dir", str(broken), "--die-at-step", "8", *settings)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = train_in_child(*common, "--run-dir", str(broken), "--resume", *settings)
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 6" in " ".join(resumed.stderr.split())
    expected_log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    resumed_log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_log] == list(range(1, 9))
    assert [r["loss"] for r in resumed_log] == pytest.approx([r["loss"] for r in expected_log], rel=1e-5)
    for name in ("adapter_model.safetensors", HEAD_FILE):
        expected = load_file(str(tmp_path / "straight" / name))
        actual = load_file(str(broken / name))
        assert expected.keys() == actual.keys() and expected, name
        for key in expected:
            assert actual[key].allclose(expected[key], atol=1e-6), key


def test_the_command_line_trains_rm_and_registers_toy_rm(tiny_model_dir, tmp_path, toy_plugin):
    from click.testing import CliRunner

    from pixiu.cli import cli

    runner = CliRunner()
    no_pairs = runner.invoke(cli, ["domain", "train", "toy", "--method", "rm", "--base", str(tiny_model_dir)])
    assert no_pairs.exit_code != 0 and "no preference formatter" in no_pairs.output
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 30)
    args = ["domain", "train", "toy", "--method", "rm", "--base", str(tiny_model_dir), "--data", str(data)]
    sets = ["--set", "data.max_seq_len=64", "--set", "train.batch_tokens=512", "--set", "data.eval_records=6"]
    result = runner.invoke(cli, [*args, "--max-steps", "2", "--output", str(tmp_path / "run"), *sets])
    assert result.exit_code == 0, result.output
    assert "registered as 'toy-rm'" in result.output and "accuracy" in result.output
    help_text = runner.invoke(cli, ["domain", "train", "--help"]).output
    assert "--method rm" in help_text
