"""Real-data check: a LoRA trained on CSL dev (abstract -> title) with the tiny model, evaluated on a test subset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu.cli import cli
from pixiu_zhihu.commands import group

from ._data import csl_or_skip

SMALL_RUN = [
    "--max-steps",
    "30",
    "--set",
    "data.eval_records=20",
    "--set",
    "eval.max_new_tokens=16",
    "--set",
    "train.batch_tokens=1024",
    "--set",
    "data.max_seq_len=256",
]


@pytest.mark.slow
def test_train_on_csl_dev_then_eval_on_test(zhihu_entry_point, tiny_model_dir: Path, tmp_path: Path) -> None:
    dev, test = tmp_path / "csl_dev.jsonl", tmp_path / "csl_test.jsonl"
    for tsv, out in ((csl_or_skip("dev"), dev), (csl_or_skip("test"), test)):
        converted = CliRunner().invoke(group, ["csl-to-jsonl", str(tsv), str(out)])
        assert converted.exit_code == 0, converted.output
    subset = tmp_path / "csl_test_subset.jsonl"
    subset.write_text("".join(test.read_text(encoding="utf-8").splitlines(keepends=True)[:40]), encoding="utf-8")

    run_dir = tmp_path / "run"
    trained = CliRunner().invoke(
        cli,
        [
            "domain",
            "train",
            "zhihu",
            "--base",
            str(tiny_model_dir),
            "--data",
            str(dev),
            "--output",
            str(run_dir),
            *SMALL_RUN,
        ],
        catch_exceptions=False,
    )
    assert trained.exit_code == 0, trained.output
    assert "rouge_l" in trained.output and (run_dir / "adapter_model.safetensors").is_file()
    losses = [json.loads(line)["loss"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])  # it learns something, even from nonsense
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["train"]["examples"] == 980 and metrics["records"] == 20

    evaluated = CliRunner().invoke(
        cli, ["domain", "eval", "zhihu", "--adapter", "zhihu", "--data", str(subset), "--json"], catch_exceptions=False
    )
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["records"] == 40 and set(report["scores"]) == {"base", "adapter"}
    for scores in report["scores"].values():
        assert set(scores) == {"rouge_1", "rouge_2", "rouge_l", "pred_chars", "ref_chars", "length_ratio"}
        assert 0 <= scores["rouge_l"] <= 100 and scores["ref_chars"] > 5
