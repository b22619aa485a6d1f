"""Evaluation: greedy answers on held-out records, parsed by the domain, scored by its metrics."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pixiu.config import EvalArgs
from pixiu.domain import Domain
from pixiu.generate import generate_answers
from pixiu.records import Example


def score_answers(domain: Domain, answers: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """Parse model answers and gold answers with the domain's parser and score them with its metrics."""
    predictions = [domain.parser(a) for a in answers]
    references = [domain.parser(e.messages[-1]["content"]) for e in examples]
    return domain.metrics(predictions, references)


def evaluate(
    model,
    tokenizer,
    domain: Domain,
    examples: Sequence[Example],
    args: EvalArgs,
    *,
    max_prompt_tokens: int,
    variants: Sequence[str] = ("base", "adapter"),
    predictions_path: Path | None = None,
) -> dict[str, dict[str, float]]:
    """Score each variant on `examples`: "base" is the model with any adapter switched off, "adapter" as loaded.

    Returns `{variant: scores}`; with `predictions_path`, every answer is written there next to its gold
    answer for inspection.
    """
    examples = list(examples)[: args.limit] if args.limit else list(examples)
    prompts = [e.messages[:-1] for e in examples]
    answers: dict[str, list[str]] = {}
    with _progress() as progress:
        for label in variants:
            context = _adapter_off(model) if label == "base" else contextlib.nullcontext()
            task = progress.add_task(f"eval {domain.name} ({label})", total=len(prompts))
            model.eval()
            with context:
                answers[label] = generate_answers(
                    model,
                    tokenizer,
                    prompts,
                    max_prompt_tokens=max_prompt_tokens,
                    max_new_tokens=args.max_new_tokens,
                    batch_size=args.batch_size,
                    on_batch=lambda n, t=task: progress.advance(t, n),
                )
    if predictions_path:
        _write_predictions(predictions_path, examples, answers)
    return {label: score_answers(domain, texts, examples) for label, texts in answers.items()}


def _adapter_off(model) -> Any:
    """A context in which a peft model answers as its bare base model (a no-op for a plain model)."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()


def _write_predictions(path: Path, examples: Sequence[Example], answers: dict[str, list[str]]) -> None:
    """One JSON line per example: where it came from, the gold answer, and each variant's answer."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for i, example in enumerate(examples):
            row = {"where": example.where, "gold": example.messages[-1]["content"]}
            row.update({label: texts[i] for label, texts in answers.items()})
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _progress() -> Progress:
    """A progress display for generation, on stderr so `--json` output stays clean."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True),
    )
