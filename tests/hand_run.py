"""A run folder written by hand, as a finished toy-domain SFT run leaves it, with no model behind it."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from pixiu.config import load_config, to_dict
from pixiu.domain import Example
from pixiu.files import atomic_write_json, write_jsonl
from pixiu.runs import EVAL_SPLIT_FILE, LOG_FILE, METRICS_FILE, PREDICTIONS_FILE, RUN_FILE, write_split

PROMPTS = 5
"""Held-out prompts in the folder."""


def write_hand_run(folder: Path, *, gold_of_first: str = "红") -> Path:
    """A toy run folder: record, held-out split, both variants' answers ("base i" / "adapter i"), log, metrics."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")  # makes it resolvable as an adapter
    record = {"status": "finished", "domain": "toy", "base_model": "tiny-base", "config": to_dict(load_config())}
    (folder / RUN_FILE).write_text(yaml.safe_dump(record, allow_unicode=True), encoding="utf-8")
    golds = [gold_of_first] + ["绿"] * (PROMPTS - 1)
    examples = [
        Example(
            [{"role": "user", "content": f"盒子{i}是什么颜色？"}, {"role": "assistant", "content": gold}],
            reference=gold,
            where=f"toy.jsonl:{i + 1}",
        )
        for i, gold in enumerate(golds)
    ]
    write_split(folder / EVAL_SPLIT_FILE, examples)
    rows = [
        {"where": e.where, "gold": e.reference, "base": f"base {i}", "adapter": f"adapter {i}"}
        for i, e in enumerate(examples)
    ]
    write_jsonl(folder / PREDICTIONS_FILE, rows)
    log = [{"step": s, "loss": 3.0 - s / 10, "tokens": 100, "seconds": 0.5, "lr": 1e-3} for s in range(1, 11)]
    (folder / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    train = {"method": "sft", "steps": 10, "final_loss": 2.0, "tokens_per_second": 200.0, "device": "cpu"}
    train |= {"precision": "fp32", "peak_memory": {"kind": "peak_rss", "gib": 0.5}}
    metrics = {"train": train, "records": PROMPTS, "base": {"exact_match": 0.0}, "adapter": {"exact_match": 40.0}}
    atomic_write_json(folder / METRICS_FILE, metrics)
    return folder
