"""`pixiu domain train law` and `pixiu domain eval law` end to end on all three CAIL2018 tasks, with the tiny model
on synthetic cases.

A tiny random model proves the plumbing (settings reach the formatter, references reach the metrics, the scores
of every task are reported), not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pixiu.cli import cli
from pixiu_law.synthetic import generate, to_jsonl

TINY_RUN = [
    "--max-steps",
    "2",
    "--set",
    "data.eval_records=4",
    "--set",
    "eval.max_new_tokens=8",
    "--set",
    "train.batch_tokens=512",
    "--set",
    "data.max_seq_len=128",
]
SCORES = {
    "accuracy",
    "micro_f1",
    "macro_f1",
    "cail_score",
    "articles_accuracy",
    "articles_micro_f1",
    "articles_macro_f1",
    "articles_cail_score",
    "term_score",
    "cail_total",
}


def test_train_all_tasks_then_eval(installed_plugins, tiny_model_dir: Path, tmp_path: Path) -> None:
    data, run_dir = tmp_path / "cases.jsonl", tmp_path / "run"
    data.write_text(to_jsonl(generate(40)), encoding="utf-8")  # the sample's first 40 cases: seconds, not minutes
    args = ["domain", "train", "law", "--base", str(tiny_model_dir), "--data", str(data), "--output", str(run_dir)]
    args += TINY_RUN
    trained = CliRunner().invoke(cli, [*args, "--set", "plugins.law.tasks=[charges,articles,term]"])
    assert trained.exit_code == 0, trained.output
    assert "term_score" in trained.output and (run_dir / "adapter_model.safetensors").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["adapter"]) == set(metrics["base"]) == SCORES and metrics["records"] == 4
    held_out = [json.loads(line) for line in (run_dir / "eval_split.jsonl").read_text(encoding="utf-8").splitlines()]
    assert all(set(row["reference"]) == {"charges", "articles", "term"} for row in held_out)

    evaluated = CliRunner().invoke(
        cli, ["domain", "eval", "law", "--adapter", "law", "--limit", "2", "--json"], catch_exceptions=False
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["records"] == 2 and all(set(scores) == SCORES for scores in report["scores"].values())


def test_a_bad_task_name_is_refused_before_training(installed_plugins, tiny_model_dir: Path, tmp_path: Path) -> None:
    args = ["domain", "train", "law", "--base", str(tiny_model_dir), "--output", str(tmp_path / "run"), *TINY_RUN]
    refused = CliRunner().invoke(cli, [*args, "--set", "plugins.law.tasks=[charges,sentence]"])
    assert refused.exit_code != 0 and "plugins.law.tasks" in refused.output
    assert not (tmp_path / "run" / "adapter_model.safetensors").exists()
