"""Real-data check: a LoRA trained on most of the Huatuo instructions with the tiny model, evaluated on the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu.cli import cli

from ._data import shared_or_skip

HELD_OUT = 40
SMALL_RUN = [
    "--max-steps",
    "30",
    "--set",
    "data.eval_records=20",
    "--set",
    "eval.max_new_tokens=32",
    "--set",
    "train.batch_tokens=1024",
    "--set",
    "data.max_seq_len=256",
]
SCORES = {"rouge_l", "bleu_4", "knowledge_recall", "unsafe_dose_rate"}


@pytest.mark.slow
def test_train_on_huatuo_then_eval_on_held_out_records(installed_plugins, tiny_model_dir: Path, tmp_path: Path) -> None:
    lines = shared_or_skip("huatuo_llama_data.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    train, test = tmp_path / "huatuo_train.jsonl", tmp_path / "huatuo_test.jsonl"
    train.write_text("".join(lines[:-HELD_OUT]), encoding="utf-8")
    test.write_text("".join(lines[-HELD_OUT:]), encoding="utf-8")

    run_dir = tmp_path / "run"
    train_args = [
        "domain",
        "train",
        "medical",
        "--base",
        str(tiny_model_dir),
        "--data",
        str(train),
        "--output",
        str(run_dir),
    ]
    trained = CliRunner().invoke(cli, [*train_args, *SMALL_RUN], catch_exceptions=False)
    assert trained.exit_code == 0, trained.output
    losses = [json.loads(line)["loss"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])  # it learns something, even from nonsense
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train"]["examples"] == len(lines) - HELD_OUT - 20 and metrics["records"] == 20

    eval_args = ["domain", "eval", "medical", "--adapter", "medical", "--data", str(test), "--json"]
    evaluated = CliRunner().invoke(cli, eval_args, catch_exceptions=False)
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["records"] == HELD_OUT and set(report["scores"]) == {"base", "adapter"}
    for scores in report["scores"].values():
        assert set(scores) == SCORES and 0 <= scores["rouge_l"] <= 100 and 0 <= scores["unsafe_dose_rate"] <= 100
