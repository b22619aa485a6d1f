"""The teacher options every command that asks a teacher model shares: endpoint, model, API key and answer cache."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def teacher_options(*, required: bool, fallback: str = "", max_tokens: int | None = None) -> Callable[[F], F]:
    """Add --teacher-url, --teacher-model, --api-key-env and --cache (and --max-tokens when a default is given).

    `fallback` names what the command does without a teacher when the options are optional.
    """
    default = f" [default: {fallback}]" if fallback else ""
    options = [
        click.option(
            "--teacher-url",
            required=required,
            help=f"OpenAI-compatible API base, e.g. http://localhost:8000/v1{default}.",
        ),
        click.option(
            "--teacher-model", required=required, help="Model name to ask the teacher endpoint for, e.g. qwen2.5-7b."
        ),
        click.option(
            "--api-key-env",
            default="OPENAI_API_KEY",
            show_default=True,
            help="Environment variable holding the teacher's API key, if it needs one.",
        ),
        click.option(
            "--cache",
            "cache_path",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Teacher answers cache (JSONL) [default: OUTPUT's name + .teacher-cache.jsonl].",
        ),
    ]
    if max_tokens is not None:
        options.append(
            click.option(
                "--max-tokens",
                type=click.IntRange(min=1),
                default=max_tokens,
                show_default=True,
                help="Longest teacher answer, in the teacher's tokens.",
            )
        )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def cache_for(output: Path, cache_path: Path | None) -> Path:
    """The teacher cache of a command writing `output`: `cache_path`, else OUTPUT's name + .teacher-cache.jsonl."""
    return cache_path or output.with_name(output.stem + ".teacher-cache.jsonl")


def api_key(env: str) -> str | None:
    """The API key held in environment variable `env`, if set."""
    return os.environ.get(env) or None
