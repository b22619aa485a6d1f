"""Preference training (`train.method: dpo`): the losses, the reference with the adapter off, bad pairs with
file:line, a run that raises the held-out margin, exact resume after SIGKILL, and the command line."""

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
from pixiu.errors import ConfigError, DataError
from pixiu.files import read_jsonl
from pixiu.loss import answer_logprobs
from pixiu.preference import collate_pairs, load_preferences, read_pairs, tokenize_pairs
from pixiu.preference_loss import PairLogprobs, preference_loss
from pixiu.recipes.dpo import run
from pixiu.registry import list_adapters
from toy_domain import TOY, write_toy_pairs

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "train.method=dpo",
    "data.max_seq_len=64",
    "train.batch_tokens=512",
    "data.eval_records=16",
    "train.lr=5e-3",
    "train.warmup_steps=2",
]


def logprobs(chosen, rejected, tokens=(1.0, 1.0)):
    return PairLogprobs(
        torch.tensor([chosen]), torch.tensor([rejected]), torch.tensor([tokens[0]]), torch.tensor([tokens[1]])
    )


def test_dpo_loss_is_log_2_where_the_policy_is_the_reference_and_falls_as_the_margin_grows():
    same = logprobs(-3.0, -4.0)
    at_start = preference_loss("sigmoid", 0.1, same, same)
    assert at_start.losses.item() == pytest.approx(math.log(2))
    assert at_start.chosen_rewards.item() == 0 and at_start.rejected_rewards.item() == 0
    better = preference_loss("sigmoid", 0.1, logprobs(-2.0, -6.0), same)
    assert better.losses.item() < math.log(2)
    assert better.chosen_rewards.item() == pytest.approx(0.1) and better.rejected_rewards.item() == pytest.approx(-0.2)


def test_ipo_regresses_the_mean_log_ratio_margin_to_one_over_two_beta():
    reference = logprobs(-4.0, -4.0, tokens=(2, 4))
    # mean log-ratio margin: (-2 - -4)/2 - (-4 - -4)/4 = 1, the target for beta = 0.5
    assert preference_loss("ipo", 0.5, logprobs(-2.0, -4.0, tokens=(2, 4)), reference).losses.item() == 0
    assert preference_loss("ipo", 0.5, reference, reference).losses.item() == pytest.approx(1.0)


def test_simpo_needs_no_reference_and_uses_length_normalised_log_probs():
    result = preference_loss("simpo", 2.0, logprobs(-2.0, -8.0, tokens=(2, 4)), None, simpo_gamma=0.5)
    assert result.losses.item() == pytest.approx(-math.log(1 / (1 + math.exp(-(2 * -1 - 2 * -2 - 0.5)))))
    with pytest.raises(ValueError, match="reference"):
        preference_loss("sigmoid", 0.1, logprobs(-2.0, -8.0), None)


def test_answer_logprobs_sum_each_rows_answer_tokens(tiny_model_dir, tmp_path):
    from pixiu.models import load_base

    model, tokenizer = load_base(str(tiny_model_dir))
    pairs = load_preferences(write_toy_pairs(tmp_path / "pairs.jsonl", 3), TOY).items
    tokenized, _ = tokenize_pairs(tokenizer, pairs, 64)
    batch = collate_pairs(tokenized, [0, 1, 2], tokenizer.pad_token_id)
    with torch.no_grad():
        sums, counts = answer_logprobs(model, batch)
        logits = model(input_ids=batch["input_ids"]).logits.float().log_softmax(-1)
    for row in range(6):
        labels = batch["labels"][row]
        positions = [t for t in range(1, len(labels)) if labels[t] >= 0]
        expected = sum(logits[row, t - 1, labels[t]] for t in positions)
        assert counts[row] == len(positions) and sums[row].item() == pytest.approx(expected.item(), abs=1e-4)
    assert torch.equal(batch["input_ids"][0, : len(tokenized[0].chosen)], torch.tensor(tokenized[0].chosen.input_ids))


def test_pairs_read_trl_rows_in_both_forms(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [
        {"prompt": "问题一", "chosen": "好", "rejected": "坏"},
        {
            "prompt": [{"role": "system", "content": "你是助手"}, {"role": "user", "content": "问题二"}],
            "chosen": [{"role": "assistant", "content": "好"}],
            "rejected": [{"role": "assistant", "content": "坏"}],
        },
    ]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    pairs = load_preferences(path, TOY).items
    assert pairs[0].prompt == [{"role": "user", "content": "问题一"}] and pairs[1].prompt[0]["role"] == "system"
    assert [(p.chosen, p.rejected, p.where) for p in pairs] == [("好", "坏", f"{path}:1"), ("好", "坏", f"{path}:2")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "问", "chosen": "同", "rejected": "同"}, "same answer"),
        ({"prompt": "问", "chosen": " ", "rejected": "坏"}, "chosen is empty"),
        ({"prompt": "问", "chosen": "好"}, "missing rejected"),
        ({"prompt": "", "chosen": "好", "rejected": "坏"}, "prompt is empty"),
        ({"prompt": "问", "chosen": 3, "rejected": "坏"}, "chosen must be the answer's text"),
    ],
)
def test_bad_pairs_are_file_line_errors_or_rejects(tmp_path, row, message):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": "问", "chosen": "好", "rejected": "坏"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: .*{message}.*--on-bad-record skip"):
        load_preferences(path, TOY)
    rejects = tmp_path / "rejects.jsonl"
    loaded = load_preferences(path, TOY, on_bad_record="skip", rejects_path=rejects)
    assert len(loaded.items) == 1 and loaded.rejected == 1
    assert message in read_jsonl(rejects)[0]["reason"] and read_jsonl(rejects)[0]["where"] == f"{path}:2"


def test_a_prompt_longer_than_max_seq_len_is_named_or_rejected(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        json.dumps({"prompt": "短", "chosen": "好", "rejected": "坏"}, ensure_ascii=False)
        + "\n"
        + json.dumps({"prompt": "长" * 300, "chosen": "好", "rejected": "坏"}, ensure_ascii=False)
        + "\n",
        encoding="utf-8",
    )
    pairs = load_preferences(path, TOY).items
    with pytest.raises(DataError, match=rf"{path}:2: the prompt is \d+ tokens.*data.max_seq_len=64"):
        tokenize_pairs(tokenizer, pairs, 64)
    rejects = tmp_path / "rejects.jsonl"
    tokenized, kept = tokenize_pairs(tokenizer, pairs, 64, on_bad_record="skip", rejects_path=rejects)
    assert [p.where for p in kept] == [f"{path}:1"] and len(tokenized) == 1
    assert read_jsonl(rejects)[0]["where"] == f"{path}:2"


def test_a_domain_preference_formatter_turns_raw_records_into_pairs(tmp_path):
    from dataclasses import replace

    from pixiu import BadRecord, Preference

    def pairs_of(record):
        if "answers" not in record:
            raise BadRecord("needs answers")
        best, *rest = sorted(record["answers"], key=lambda a: -a["votes"])
        return [Preference([{"role": "user", "content": record["q"]}], best["text"], a["text"]) for a in rest]

    domain = replace(TOY, preference_formatter=pairs_of)
    path = tmp_path / "raw.jsonl"
    record = {
        "q": "问",
        "answers": [{"text": "差", "votes": 1}, {"text": "好", "votes": 9}, {"text": "中", "votes": 5}],
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n" + json.dumps({"q": "空"}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: needs answers"):
        load_preferences(path, domain)
    loaded = load_preferences(path, domain, on_bad_record="skip", rejects_path=tmp_path / "rejects.jsonl")
    assert [(p.chosen, p.rejected, p.where) for p in loaded.items] == [
        ("好", "中", f"{path}:1"),
        ("好", "差", f"{path}:1"),
    ]


def test_dpo_raises_the_held_out_margin_and_registers_domain_dpo(tiny_model_dir, tmp_path):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 80)
    run_dir = tmp_path / "run"
    config = load_config(
        overrides=[*SMALL, "train.max_steps=12", "train.save_every=6"], values={"base": str(tiny_model_dir)}
    )
    summary = run(TOY, config, data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    # LoRA starts as a no-op, so the policy is the reference at the first step: DPO's loss is exactly log 2
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-5) and log[0]["reward_margin"] == pytest.approx(0)
    assert log[-1]["loss"] < log[0]["loss"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert summary.metrics == metrics and metrics["records"] == 16
    assert metrics["adapter"]["margin"] > metrics["base"]["margin"]
    assert metrics["adapter"]["reward_accuracy"] > 50 and metrics["adapter"]["reward_margin"] > 0
    assert metrics["train"]["method"] == "dpo" and metrics["train"]["pairs"] == 64
    held_out = read_pairs(run_dir / "eval_pairs.jsonl")
    assert len(held_out) == 16 and all(p.where.startswith(f"{data}:") for p in held_out)
    assert {"adapter_model.safetensors", "adapter_config.json", "pixiu_run.yaml", "loss.png"} <= {
        p.name for p in run_dir.iterdir()
    }
    entry = list_adapters()[0]
    assert (entry.name, entry.domain, entry.path) == ("toy-dpo", "toy", str(run_dir.resolve()))


def test_rrhf_ranks_by_mean_log_prob_with_a_hinge_and_learns_the_chosen_answer():
    wrong_way = preference_loss("rrhf", 1.0, logprobs(-8.0, -2.0, tokens=(4, 2)), None)  # means -2 and -1
    assert wrong_way.losses.item() == pytest.approx((-1.0 - -2.0) + 2.0)  # hinge 1, plus the chosen CE 2
    right_way = preference_loss("rrhf", 0.5, logprobs(-2.0, -8.0, tokens=(2, 4)), None)  # means -1 and -2
    assert right_way.losses.item() == pytest.approx(0.5 * 1.0)  # no hinge: the chosen CE alone, scaled by beta
    assert right_way.chosen_rewards.item() == -1.0 and right_way.rejected_rewards.item() == -2.0


@pytest.mark.parametrize("loss", ["ipo", "simpo", "rrhf"])
def test_the_other_losses_train_too(tiny_model_dir, tmp_path, loss):
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 40)
    overrides = [*SMALL, "train.max_steps=6", f"dpo.loss={loss}", "data.eval_records=8"]
    metrics = run(
        TOY, load_config(overrides=overrides, values={"base": str(tiny_model_dir)}), data, tmp_path / "r"
    ).metrics
    assert metrics["train"]["loss"] == loss
    # RRHF's hinge ranks by mean log-prob, so its gain shows in the pairs ranked right, not in the summed margin
    score = "accuracy" if loss == "rrhf" else "margin"
    assert metrics["adapter"][score] > metrics["base"][score]


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_a_sigkilled_dpo_run_resumes_exactly(tiny_model_dir, tmp_path):
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
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(broken / "adapter_model.safetensors"))
    assert expected.keys() == actual.keys()
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key


def test_dpo_on_several_devices_takes_ddp_and_refuses_sharding():
    assert load_config(overrides=["train.method=dpo", "train.devices=2"]).train.devices == 2
    with pytest.raises(ConfigError, match=r"train\.method=dpo trains on several devices with train\.strategy=ddp"):
        load_config(overrides=["train.method=dpo", "train.devices=2", "train.strategy=fsdp"])


def test_the_command_line_trains_dpo_and_explains_missing_pairs(tiny_model_dir, tmp_path, toy_plugin, monkeypatch):
    from click.testing import CliRunner

    from pixiu.cli import cli

    runner = CliRunner()
    no_pairs = runner.invoke(cli, ["domain", "train", "toy", "--method", "dpo", "--base", str(tiny_model_dir)])
    assert no_pairs.exit_code != 0 and "no preference formatter" in no_pairs.output
    data = write_toy_pairs(tmp_path / "pairs.jsonl", 30)
    args = ["domain", "train", "toy", "--method", "dpo", "--base", str(tiny_model_dir), "--data", str(data)]
    sets = ["--set", "data.max_seq_len=64", "--set", "train.batch_tokens=512", "--set", "data.eval_records=6"]
    result = runner.invoke(cli, [*args, "--max-steps", "2", "--output", str(tmp_path / "run"), *sets])
    assert result.exit_code == 0, result.output
    assert "registered as 'toy-dpo'" in result.output and "margin" in result.output
    help_text = runner.invoke(cli, ["domain", "train", "--help"]).output
    assert "--method" in help_text and "--method dpo" in help_text


def test_dpo_from_an_sft_adapter_holds_the_policy_to_that_adapter_not_the_base(tiny_model_dir, tmp_path):
    from pixiu.recipes import lora_sft
    from toy_domain import write_toy_data

    sft_overrides = ["data.max_seq_len=64", "train.batch_tokens=512", "data.eval_records=0", "train.max_steps=3"]
    sft = lora_sft.run(
        TOY,
        load_config(overrides=[*sft_overrides, "train.lr=5e-2"], values={"base": str(tiny_model_dir)}),
        write_toy_data(tmp_path / "toy.jsonl", 30),
        tmp_path / "sft",
    )
    run_dir = tmp_path / "dpo"
    config = load_config(
        overrides=[*SMALL, "train.max_steps=2", "data.eval_records=8", f"train.init_adapter={sft.run_dir}"],
        values={"base": str(tiny_model_dir)},
    )
    summary = run(TOY, config, write_toy_pairs(tmp_path / "pairs.jsonl", 40), run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    # the reference is the SFT adapter the policy starts as (as in the DPO paper), so step 1's loss is log 2
    # exactly; against the base it would not be, since the SFT adapter already moved the log-probs
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-5) and log[0]["reward_margin"] == pytest.approx(0)
    assert summary.metrics["base"]["margin"] != summary.metrics["adapter"]["margin"]  # "base" is still the base
    assert not (run_dir / "reference").exists()  # only the trained adapter is saved, not its frozen copy
