"""{{ cookiecutter.package }}'s hook implementations: the `{{ cookiecutter.name }}` domain and its served answers.

pixiu imports this module through the `pixiu` entry point in pyproject.toml and calls the functions
marked `@hookimpl` whose names match its hooks (see pixiu's docs/plugins.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pixiu import Domain, hookimpl

import {{ cookiecutter.package }}
from {{ cookiecutter.package }}.formatter import format_record, preference_pairs
from {{ cookiecutter.package }}.metrics import answer_metrics
from {{ cookiecutter.package }}.parser import parse_answer
from {{ cookiecutter.package }}.reward import reward

PIXIU_HOOK_API = "{{ cookiecutter.hook_api }}"
"""The pixiu hook API versions this plugin works with; pixiu refuses to load it outside this range."""

_HERE = Path(__file__).resolve().parent


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register the `{{ cookiecutter.name }}` domain."""
    register(
        Domain(
            name="{{ cookiecutter.name }}",
            description="{{ cookiecutter.description }}",
            version={{ cookiecutter.package }}.__version__,
            formatter=format_record,
            preference_formatter=preference_pairs,
            parser=parse_answer,
            metrics=answer_metrics,
            reward=reward,
            default_config=_HERE / "configs" / "default.yaml",
            sample_data=_HERE / "sample_data" / "sample.jsonl",
            spiders=("{{ cookiecutter.package }}.spiders.faq:FaqSpider",),
        )
    )


CUT_MARK = " [answer cut at max_tokens]"
"""Appended to a served answer that `max_tokens` cut, so the reader sees it is unfinished."""


@hookimpl
def process_response(domain: str | None, text: str, adapter: str, finish_reason: str) -> str | None:
    """Mark an answer of an adapter trained on `{{ cookiecutter.name }}` that `max_tokens` cut; else leave it be.

    `pixiu serve` calls this once per finished chat answer; return the new text, or None to keep it.
    Append rather than rewrite, so a streamed answer can still send the addition as its last chunk.
    """
    if domain != "{{ cookiecutter.name }}" or finish_reason != "length":
        return None
    return text + CUT_MARK
