"""`pixiu domain eval` as a library call: pick the records, the base and the adapter, then score them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from pixiu.config import formatter_for, load_config
from pixiu.plugins import get_domain
from pixiu.records import Example, load_examples
from pixiu.registry import resolve_adapter


def evaluate_domain(
    domain_name: str,
    *,
    base: str | None = None,
    adapter: str | None = None,
    data_path: Path | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """Score the base model, and the adapter when given, on a domain's records; return a JSON-ready report."""
    from pixiu.lora import load_adapter
    from pixiu.models import load_base
    from pixiu.recipes.evaluate import evaluate
    from pixiu.recipes.lora_sft import RUN_FILE, split_examples

    domain = get_domain(domain_name)
    config = load_config([domain.default_config] if domain.default_config else [], domain=domain)
    adapter_dir = resolve_adapter(adapter) if adapter else None
    run_record = _read_run_file(adapter_dir / RUN_FILE) if adapter_dir else {}
    base = base or run_record.get("base_model") or config.base
    if data_path:
        examples, source = load_examples(data_path, formatter_for(domain, config)).examples, str(data_path)
    elif adapter_dir and (adapter_dir / "eval_split.jsonl").is_file():
        examples, source = _read_split(adapter_dir / "eval_split.jsonl"), str(adapter_dir / "eval_split.jsonl")
    else:
        everything = load_examples(domain.sample_data, formatter_for(domain, config)).examples
        examples = split_examples(everything, config.data.eval_records, config.train.seed)[1]
        source = f"{domain.sample_data} (held-out split)"
    if limit:
        examples = examples[:limit]
    model, tokenizer = load_base(base)
    if adapter_dir:
        model = load_adapter(model, adapter_dir)
    scores = evaluate(
        model, tokenizer, domain, examples, config.eval,
        max_prompt_tokens=config.data.max_seq_len,
        variants=("base", "adapter") if adapter_dir else ("base",),
    )
    return {
        "domain": domain.name,
        "base": base,
        "adapter": str(adapter_dir) if adapter_dir else None,
        "data": source,
        "records": len(examples),
        "scores": scores,
    }


def _read_run_file(path: Path) -> dict[str, Any]:
    """A run's `pixiu_run.yaml`, or nothing when the adapter folder was not made by pixiu."""
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _read_split(path: Path) -> list[Example]:
    """Examples saved by a training run as its held-out split."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Example(row["where"], row["messages"]) for row in rows]
