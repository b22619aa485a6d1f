"""`pixiu domain train medical` and `pixiu domain eval medical` end to end, with the tiny model on the bundled data."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pixiu.cli import cli

TINY_RUN = [
    "--max-steps",
    "2",
    "--set",
    "data.eval_records=4",
    "--set",
    "eval.max_new_tokens=8",
    "--set",
    "train.batch_tokens=512",
]
SCORES = {"rouge_l", "bleu_4", "knowledge_recall", "unsafe_dose_rate"}


def test_train_on_sample_data_then_eval(installed_plugins, tiny_model_dir: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trained = CliRunner().invoke(
        cli,
        ["domain", "train", "medical", "--base", str(tiny_model_dir), "--output", str(run_dir), *TINY_RUN],
        catch_exceptions=False,
    )
    assert trained.exit_code == 0, trained.output
    assert "knowledge_recall" in trained.output and (run_dir / "adapter_model.safetensors").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["adapter"]) >= SCORES and metrics["records"] == 4

    evaluated = CliRunner().invoke(
        cli, ["domain", "eval", "medical", "--adapter", "medical", "--limit", "2", "--json"], catch_exceptions=False
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["records"] == 2 and set(report["scores"]) == {"base", "adapter"}
    assert all(set(scores) == SCORES for scores in report["scores"].values())
