"""Run folders as the training recipes leave them, fabricated for the runs index and pages' tests."""

import json
from pathlib import Path

import yaml


def fake_run(
    folder: Path,
    *,
    status: str | None = "finished",
    steps: int = 3,
    lr: float = 1e-3,
    scores: dict | None = None,
    checkpoint: bool = False,
    predictions: int = 0,
) -> Path:
    """A run folder as a recipe leaves it: pixiu_run.yaml, a train log, metrics.json when finished, and optionally
    a checkpoint and held-out predictions with their prompts."""
    folder.mkdir(parents=True)
    config = {"base": "tiny", "train": {"method": "sft", "max_steps": 10, "lr": lr}, "lora": {"r": 8}}
    if status is not None:
        record = {"status": status, "domain": "toy", "base_model": "tiny", "data": "/d.jsonl", "config": config}
        (folder / "pixiu_run.yaml").write_text(yaml.safe_dump(record), encoding="utf-8")
    rows = [{"step": s, "loss": 3.0 - s * 0.5, "tokens": 100, "seconds": 0.5} for s in range(1, steps + 1)]
    (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if status == "finished":
        metrics = {
            "train": {"method": "sft", "steps": steps, "tokens_per_second": 200.0, "peak_memory": {"gib": 0.5}},
            "records": predictions,
            **(scores or {"base": {"exact_match": 0.0}, "adapter": {"exact_match": 0.5}}),
        }
        (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    if checkpoint:
        (folder / "checkpoints" / "step-0000002").mkdir(parents=True)
    turns = [
        [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(predictions)
    ]
    split = [{"where": f"d:{i}", "messages": messages} for i, messages in enumerate(turns)]
    preds = [{"where": f"d:{i}", "gold": f"a{i}", "base": f"b{i}", "adapter": f"x{i}"} for i in range(predictions)]
    if predictions:
        (folder / "eval_split.jsonl").write_text("".join(json.dumps(r) + "\n" for r in split), encoding="utf-8")
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds), encoding="utf-8")
    return folder


def append_log(folder: Path, step: int, loss: float) -> None:
    """Append one step's row to a run's train_log.jsonl, as a training does after each step."""
    with (folder / "train_log.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps({"step": step, "loss": loss, "tokens": 100, "seconds": 0.5}) + "\n")
