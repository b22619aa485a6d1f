"""The files of a run directory that more than the training recipe reads, and the held-out split they record."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from pixiu.domain import Example
from pixiu.errors import PixiuError
from pixiu.files import read_jsonl, write_jsonl
from pixiu.paths import runs_dir

T = TypeVar("T")

RUN_FILE = "pixiu_run.yaml"
"""Resolved config, base model, domain and versions of a run."""
LOG_FILE = "train_log.jsonl"
"""One JSON line per optimiser step."""
EVAL_SPLIT_FILE = "eval_split.jsonl"
"""The held-out examples, references included, so `pixiu domain eval` reproduces the run's scores."""
EVAL_PAIRS_FILE = "eval_pairs.jsonl"
"""The held-out preference pairs of a preference run (`--method dpo`)."""
PREDICTIONS_FILE = "predictions.jsonl"
"""Each held-out example's gold answer next to every variant's answer."""
GENERAL_PREDICTIONS_FILE = "general_predictions.jsonl"
"""The forgetting probe's general questions, each with its reference and every variant's answer."""
JUDGE_FILE = "judge.jsonl"
"""Every judged prompt of `pixiu domain judge`: both answers and the judge's raw verdict in each order."""
JUDGE_PAIRS_FILE = "judge_pairs.jsonl"
"""The prompts the judge decided in both orders as TRL preference rows (the winner chosen), for `--method dpo`."""
LOSS_PLOT_FILE = "loss.png"
"""The loss curve every recipe draws into its run folder (and the report shows)."""
REPORT_FILE = "report.html"
"""The run's before/after report for people: what was trained, its cost, and base vs adapter."""
METRICS_FILE = "metrics.json"
"""Training figures, the record count and the scores of every variant."""
REJECTS_FILE = "rejects.jsonl"
"""Where a run writes the records, pairs and answers it skipped (`--on-bad-record skip`)."""


def rejects_file(run_dir: Path, writes: bool) -> Path:
    """Where this process writes the records it skips: the run's rejects.jsonl on the rank that writes the run's
    files, nowhere (the null device) on the other ranks, which skip the same records."""
    return Path(run_dir) / REJECTS_FILE if writes else Path(os.devnull)


@dataclass(frozen=True)
class Split(Generic[T]):
    """A run's examples (or pairs): those it trains on, those it holds out, and how many records were rejected."""

    train: list[T]
    held_out: list[T]
    rejected: int


def split_examples(examples: list[T], eval_records: int, seed: int) -> tuple[list[T], list[T]]:
    """Hold out `eval_records` examples (or pairs) chosen by `seed`; the rest, in file order, are for training."""
    held = set(random.Random(seed).sample(range(len(examples)), min(eval_records, len(examples) // 2)))
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


def held_out_note(examples: int, eval_records: int) -> str | None:
    """Say that `split_examples` holds out fewer than the `eval_records` asked for, or None when it does not."""
    held = min(eval_records, examples // 2)
    if held == eval_records:
        return None
    return (
        f"data.eval_records is {eval_records}, but only {held} of the {examples} records are held out for "
        "evaluation: at most half the data is, so that training keeps the rest; give more records or lower "
        "data.eval_records"
    )


def write_split(path: Path, examples: list[Example]) -> None:
    """Save held-out examples (where, messages, and the reference when the formatter gave one)."""
    rows = []
    for example in examples:
        row: dict[str, Any] = {"where": example.where, "messages": example.messages}
        if example.reference is not None:
            row["reference"] = example.reference
        rows.append(row)
    try:
        write_jsonl(path, rows)
    except TypeError as exc:
        raise PixiuError(
            f"{path}: {exc}; a formatter's Example.reference must be JSON-serialisable (lists, not sets)"
        ) from exc


def read_split(path: Path) -> list[Example]:
    """Examples saved by `write_split`."""
    return [Example(row["messages"], row.get("reference"), row["where"]) for row in read_jsonl(path)]


def read_run_file(run_dir: Path) -> dict[str, Any]:
    """A run's `pixiu_run.yaml`, or nothing when the folder was not made by pixiu (or the file holds no mapping)."""
    path = Path(run_dir) / RUN_FILE
    record = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return record if isinstance(record, dict) else {}


def new_run_dir(domain: str) -> Path:
    """Create a fresh run folder PIXIU_HOME/runs/DOMAIN-TIME (-2, -3... when that name is taken) and return it."""
    stem = runs_dir() / f"{domain}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    runs_dir().mkdir(parents=True, exist_ok=True)
    candidate, number = stem, 1
    while True:
        try:
            candidate.mkdir()  # atomic: of two runs started in the same second, each gets its own folder
            return candidate
        except FileExistsError:
            number += 1
            candidate = stem.with_name(f"{stem.name}-{number}")
