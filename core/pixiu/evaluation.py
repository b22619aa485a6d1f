"""Evaluation: greedy answers on held-out records, parsed by the domain, scored by its metrics against references.

`score_answers` is the scoring step alone; `evaluate` generates the answers of each variant (base, adapter)
and scores them; `evaluate_domain` is `pixiu domain eval` as a library call.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from pixiu.config import EvalArgs, RunConfig, formatter_for, load_config
from pixiu.devices import Precision
from pixiu.domain import Domain, Example, Messages
from pixiu.errors import PixiuError
from pixiu.files import write_jsonl
from pixiu.generate import clean_answer, generate_answers
from pixiu.records import load_examples
from pixiu.runs import EVAL_SPLIT_FILE, read_run_file, read_split, split_examples


def reference_of(domain: Domain, example: Example) -> Any:
    """What an example's prediction is scored against: the formatter's reference, else the parsed gold answer."""
    if example.reference is not None:
        return example.reference
    return domain.parser(example.messages[-1]["content"])


def score_answers(domain: Domain, answers: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """Parse model answers (chat tokens stripped) and score them with the domain's metrics against the references.

    Raises:
        PixiuError: There are no examples, the answers and examples differ in number, or the metrics
            return something other than a dict of finite numbers.
    """
    if not examples:
        raise PixiuError("no examples to score; give at least one record (check --data and data.eval_records)")
    if len(answers) != len(examples):
        raise PixiuError(f"got {len(answers)} answers for {len(examples)} examples; pass one answer per example")
    predictions = [domain.parser(clean_answer(a)) for a in answers]
    references = [reference_of(domain, e) for e in examples]
    scores = domain.metrics(predictions, references)
    if not isinstance(scores, dict) or not all(is_score(value) for value in scores.values()):
        raise PixiuError(f"domain {domain.name!r}: metrics must return {{name: finite number}}, got {scores!r}")
    return {name: float(value) for name, value in scores.items()}


def is_score(value: Any) -> bool:
    """Whether `value` is a finite real number (a bool is not a score)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Evaluation:
    """How many records were scored, and the scores of each variant."""

    records: int
    scores: dict[str, dict[str, float]]
    answers: dict[str, list[str]]
    """Each variant's answers, in the order of the examples scored."""


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
) -> Evaluation:
    """Score each variant on `examples`: "base" is the model with any adapter switched off, "adapter" as loaded.

    Returns the record count and `{variant: scores}`; with `predictions_path`, every answer is written there
    next to its gold answer for inspection.
    """
    examples = list(examples)[: args.limit] if args.limit else list(examples)
    prompts = [e.messages[:-1] for e in examples]
    answers = variant_answers(
        model, tokenizer, prompts, args, max_prompt_tokens=max_prompt_tokens, variants=variants, title=domain.name
    )
    if predictions_path:
        _write_predictions(predictions_path, examples, answers)
    scores = {label: score_answers(domain, texts, examples) for label, texts in answers.items()}
    return Evaluation(len(examples), scores, answers)


def variant_answers(
    model,
    tokenizer,
    prompts: Sequence[Messages],
    args: EvalArgs,
    *,
    max_prompt_tokens: int,
    variants: Sequence[str] = ("base", "adapter"),
    title: str,
) -> dict[str, list[str]]:
    """Each variant's greedy answers to `prompts` ("base": any adapter switched off), with a progress bar each."""
    answers: dict[str, list[str]] = {}
    with progress_bars() as progress:
        for label in variants:
            context = variant_context(model, label)
            task = progress.add_task(f"eval {title} ({label})", total=len(prompts))
            model.eval()
            with context:
                answers[label] = generate_answers(
                    model,
                    tokenizer,
                    list(prompts),
                    max_prompt_tokens=max_prompt_tokens,
                    max_new_tokens=args.max_new_tokens,
                    batch_size=args.batch_size,
                    on_batch=functools.partial(progress.advance, task),
                )
    return answers


@dataclass(frozen=True)
class EvalSetup:
    """What `pixiu domain eval` (and `judge`) works on: the domain, the config that applies, the base, the
    adapter folder when given, and the records chosen with where they came from."""

    domain: Domain
    config: RunConfig
    base: str
    adapter_dir: Path | None
    examples: list[Example]
    source: str


def eval_setup(
    domain_name: str,
    *,
    base: str | None = None,
    adapter: str | None = None,
    data_path: Path | None = None,
    limit: int | None = None,
    data_format: str | None = None,
) -> EvalSetup:
    """Resolve the domain, the adapter and its run's config, the base, and the records to evaluate on: `data_path`,
    else the adapter's held-out split, else the held-out part of the domain's sample data (at most `limit`).
    `data_format` (`--format`) overrides the run's `data.format` for reading `data_path`.

    Raises:
        PixiuError: No data was given and the domain ships none.
    """
    from pixiu.plugins import get_domain
    from pixiu.registry import resolve_adapter

    domain = get_domain(domain_name)
    adapter_dir = resolve_adapter(adapter) if adapter else None
    run_record = read_run_file(adapter_dir) if adapter_dir else {}
    values = {"data.format": data_format} if data_format else {}
    if run_record.get("config"):  # evaluate as the adapter was trained: prompt length, settings, generation
        config = load_config(domain=domain, start=run_record["config"], values=values)
    else:
        config = load_config([domain.default_config] if domain.default_config else [], values=values, domain=domain)
    base = base or run_record.get("base_model") or config.base
    split = adapter_dir / EVAL_SPLIT_FILE if adapter_dir else None
    if data_path:
        examples, source = load_examples(data_path, formatter_for(domain, config)).items, str(data_path)
    elif split and split.is_file():
        examples, source = read_split(split), str(split)
    elif domain.sample_data:
        everything = load_examples(domain.sample_data, formatter_for(domain, config)).items
        examples = split_examples(everything, config.data.eval_records, config.train.seed)[1]
        source = f"{domain.sample_data} (held-out split)"
    else:
        raise PixiuError(f"domain {domain.name!r} ships no sample data; pass --data FILE to evaluate on")
    return EvalSetup(domain, config, base, adapter_dir, examples[:limit] if limit else examples, source)


def evaluate_domain(
    domain_name: str,
    *,
    base: str | None = None,
    adapter: str | None = None,
    data_path: Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    precision: Precision = "auto",
    data_format: str | None = None,
    general: bool | None = None,
) -> dict[str, Any]:
    """Score the base model, and the adapter when given, on a domain's records; return a JSON-ready report.

    With an adapter made by pixiu, its run's recorded config applies (`pixiu_run.yaml`): prompts are cut
    at the length it was trained with, and the domain's settings and generation settings are the run's.
    `device` and `precision` (as `--device`/`--precision`) are checked before anything is loaded; the
    base's weights are loaded straight onto the device in that dtype, the adapter's stay fp32. `data_format`
    (`--format`) overrides the run's `data.format` for reading `data_path`. With `general`
    (default: the config's `eval.general`), the forgetting probe (`pixiu.general`) runs too and its figures are
    the report's `general` section.
    """
    from pixiu.devices import placement, precision_name
    from pixiu.general import run_probe
    from pixiu.lora import load_adapter
    from pixiu.methods import WHOLE_MODEL, adapter_method
    from pixiu.models import load_base

    target, dtype = placement(device, precision)
    setup = eval_setup(
        domain_name, base=base, adapter=adapter, data_path=data_path, limit=limit, data_format=data_format
    )
    config, adapter_dir = setup.config, setup.adapter_dir
    whole = adapter_dir is not None and adapter_method(adapter_dir) in WHOLE_MODEL  # full/freeze: a model folder
    base_model, tokenizer = load_base(str(adapter_dir) if whole else setup.base, dtype=dtype, device=target)
    model = load_adapter(base_model, adapter_dir) if adapter_dir and not whole else base_model
    variants = ("adapter",) if whole else ("base", "adapter") if adapter_dir else ("base",)
    max_len = config.data.max_seq_len
    result = evaluate(
        model, tokenizer, setup.domain, setup.examples, config.eval, max_prompt_tokens=max_len, variants=variants
    )
    report: dict[str, Any] = {
        "domain": setup.domain.name,
        "base": setup.base,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "data": setup.source,
        "records": result.records,
        "device": str(target),
        "precision": precision_name(dtype),
        "scores": result.scores,
    }
    if config.eval.general if general is None else general:
        report["general"] = run_probe(model, tokenizer, config.eval, max_len=max_len, variants=variants)
    return report


def variant_context(model, label: str) -> Any:
    """A context in which `model` answers as variant `label`: "base" switches a peft model's adapter off (a no-op
    for a plain model); any other label leaves the model as it is."""
    if label == "base" and hasattr(model, "disable_adapter"):
        return model.disable_adapter()
    return contextlib.nullcontext()


def _write_predictions(path: Path, examples: Sequence[Example], answers: dict[str, list[str]]) -> None:
    """One JSON line per example: where it came from, the gold answer, and each variant's answer."""
    rows = []
    for i, example in enumerate(examples):
        row = {"where": example.where, "gold": example.messages[-1]["content"]}
        row.update({label: texts[i] for label, texts in answers.items()})
        rows.append(row)
    write_jsonl(path, rows)


def progress_bars() -> Progress:
    """A progress display for generation and judging, on stderr so `--json` output stays clean."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
