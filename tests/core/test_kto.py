"""KTO (`train.method: kto`): the loss on desirable and undesirable answers around the KL reference point,
trl-style unpaired rows and pairs read as feedback with file:line errors, a run that separates held-out thumbs-up
from thumbs-down answers, exact resume after SIGKILL, and the command line."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pixiu.config import load_config
from pixiu.errors import DataError
from pixiu.feedback import load_feedback
from pixiu.preference_loss import kto_loss
from pixiu.recipes.kto import run
from pixiu.registry import list_adapters
from toy_domain import COLOURS, TOY, write_toy_pairs

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "train.method=kto",
    "data.max_seq_len=64",
    "train.batch_tokens=1024",
    "data.eval_records=20",
    "train.lr=5e-3",
    "train.warmup_steps=2",
]


def kto_config(base, *extra):
    return load_config(overrides=[*SMALL, *extra], values={"base": str(base)})


def test_a_desirable_answer_gains_and_an_undesirable_one_loses_by_its_ratio_against_the_reference_point():
    policy = torch.tensor([1.0, 1.0], requires_grad=True)
    result = kto_loss(policy, torch.zeros(2), torch.tensor([True, False]), torch.tensor(0.5), beta=2.0)
    assert result.losses.tolist() == pytest.approx(
        [1 - torch.sigmoid(torch.tensor(1.0)).item(), 1 - torch.sigmoid(torch.tensor(-1.0)).item()]
    )
    result.losses.sum().backward()
    assert policy.grad is not None and policy.grad[0] < 0 < policy.grad[1]  # raise the good, lower the bad
    assert result.rewards.tolist() == [2.0, 2.0] and result.reference_point.item() == 0.5
    negative = kto_loss(policy, torch.zeros(2), torch.tensor([True, False]), torch.tensor(-3.0), beta=2.0)
    assert negative.reference_point.item() == 0.0  # the KL estimate is clamped at 0


def test_the_undesirable_weight_scales_only_undesirable_losses():
    args = (torch.zeros(2), torch.zeros(2), torch.tensor([True, False]), torch.tensor(0.0))
    plain, weighted = kto_loss(*args, beta=0.1), kto_loss(*args, beta=0.1, undesirable_weight=2.0)
    assert weighted.losses[0] == plain.losses[0] and weighted.losses[1] == pytest.approx(2 * plain.losses[1].item())


def test_unpaired_rows_and_pairs_are_read_as_feedback_with_file_line_errors(tmp_path):
    rows = [
        {"prompt": "红？", "completion": "红", "label": True},
        {
            "prompt": [{"role": "user", "content": "绿？"}],
            "completion": [{"role": "assistant", "content": "蓝"}],
            "label": False,
        },
        {"prompt": "白？", "chosen": "白", "rejected": "黑"},
    ]
    path = tmp_path / "thumbs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    answers = load_feedback(path, TOY).items
    assert [(a.completion, a.desirable) for a in answers] == [("红", True), ("蓝", False), ("白", True), ("黑", False)]
    assert answers[1].prompt == [{"role": "user", "content": "绿？"}] and answers[3].where.endswith(":3")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(rows[0], ensure_ascii=False) + "\n" + '{"prompt": "x", "completion": "y", "label": "yes"}\n'
    )
    with pytest.raises(DataError, match=r"bad\.jsonl:2: label must be true .* not 'yes'"):
        load_feedback(bad, TOY)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"prompt": "x", "completion": " ", "label": true}\n')
    with pytest.raises(DataError, match=r"empty\.jsonl:1: completion is empty"):
        load_feedback(empty, TOY)
    skipped = load_feedback(bad, TOY, on_bad_record="skip", rejects_path=tmp_path / "rejects.jsonl")
    assert skipped.rejected == 1 and len(skipped.items) == 1
    assert "label must be" in (tmp_path / "rejects.jsonl").read_text()


def test_one_kind_of_answer_alone_cannot_train(tiny_model_dir, tmp_path):
    path = tmp_path / "ups.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": f"{c}{i}?", "completion": c, "label": True}, ensure_ascii=False) + "\n"
            for i, c in enumerate(COLOURS * 4)
        ),
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"needs desirable and undesirable answers .* 16 desirable of 16"):
        run(TOY, kto_config(tiny_model_dir, "data.eval_records=4"), path, tmp_path / "run")


def test_kto_separates_held_out_thumbs_up_from_thumbs_down_and_registers_domain_kto(tiny_model_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 60)  # 120 answers: the colour named is desirable
    run_dir = tmp_path / "run"
    summary = run(TOY, kto_config(tiny_model_dir, "train.max_steps=40", "train.save_every=20"), data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 41)) and all(r["kl"] >= 0 for r in log)
    assert log[0]["loss"] == pytest.approx(0.5, abs=1e-3)  # the adapter starts as the base: every ratio is 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary.metrics == metrics and metrics["records"] == 20 and metrics["train"]["method"] == "kto"
    assert metrics["train"]["answers"] == 100 and 0 < metrics["train"]["desirable"] < 100
    assert metrics["adapter"]["margin"] > metrics["base"]["margin"]
    assert metrics["adapter"]["reward_margin"] > 0 and metrics["adapter"]["reward_accuracy"] > 50
    held_out = [json.loads(line) for line in (run_dir / "eval_feedback.jsonl").read_text().splitlines()]
    assert len(held_out) == 20 and {"prompt", "completion", "label", "where"} <= set(held_out[0])
    entry = list_adapters()[0]
    assert (entry.name, entry.domain) == ("toy-kto", "toy")


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_a_sigkilled_kto_run_resumes_exactly(tiny_model_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 40)
    common = ["--base", str(tiny_model_dir), "--data", str(data)]
    extra = ["train.max_steps=7", "train.save_every=3", "data.eval_records=0", "lora.dropout=0.1"]
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
    assert [r["loss"] for r in resumed_log] == pytest.approx([r["loss"] for r in expected_log], rel=1e-5, abs=1e-7)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(broken / "adapter_model.safetensors"))
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key


def test_the_command_line_trains_kto_and_registers_toy_kto(tiny_model_dir, tmp_path, toy_plugin):
    from click.testing import CliRunner

    from pixiu.cli import cli

    runner = CliRunner()
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 30)
    args = ["domain", "train", "toy", "--method", "kto", "--base", str(tiny_model_dir), "--data", str(data)]
    sets = ["--set", "data.max_seq_len=64", "--set", "train.batch_tokens=512", "--set", "data.eval_records=6"]
    result = runner.invoke(cli, [*args, "--max-steps", "2", "--output", str(tmp_path / "run"), *sets])
    assert result.exit_code == 0, result.output
    assert "registered as 'toy-kto'" in result.output and "reward_accuracy" in result.output
    assert "--method kto" in runner.invoke(cli, ["domain", "train", "--help"]).output
