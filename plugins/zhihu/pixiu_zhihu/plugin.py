"""pixiu_zhihu's hook implementations: the `zhihu` domain (question + answers -> summary) and `pixiu zhihu` verbs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pixiu_zhihu
from pixiu import Domain, WebPage, hookimpl
from pixiu_zhihu.formatter import ZhihuSettings, format_record
from pixiu_zhihu.metrics import summary_metrics
from pixiu_zhihu.pairs import vote_preferences
from pixiu_zhihu.parser import parse_summary
from pixiu_zhihu.reward import summary_reward

PIXIU_HOOK_API = ">=1.3,<2"
"""The pixiu hook API versions this plugin works with."""

if TYPE_CHECKING:
    import click

_HERE = Path(__file__).resolve().parent


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register the `zhihu` domain: summarise a question's most up-voted answers in one sentence."""
    register(
        Domain(
            name="zhihu",
            description="Zhihu Q&A summarisation: a question and its top answers -> one-sentence gist (ROUGE).",
            version=pixiu_zhihu.__version__,
            formatter=format_record,
            parser=parse_summary,
            metrics=summary_metrics,
            reward=summary_reward,
            default_config=_HERE / "configs" / "smollm2_135m_lora.yaml",
            settings=ZhihuSettings,
            preference_formatter=vote_preferences,
            sample_data=_HERE / "sample_data" / "zhihu_synthetic.jsonl",
            spiders=(
                "pixiu_zhihu.spiders.answers:ZhihuAnswersSpider",
                "pixiu_zhihu.spiders.hot:ZhihuHotSpider",
            ),
        )
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add `pixiu zhihu references | pairs | csl-to-jsonl`."""
    from pixiu_zhihu.commands import group

    cli.add_command(group)


@hookimpl
def register_web_pages(register: Callable[[WebPage], None]) -> None:
    """Add the hot-list chat (和知乎热榜聊天) to `pixiu serve`'s web app."""
    from pixiu_zhihu.web import PAGE

    register(PAGE)
