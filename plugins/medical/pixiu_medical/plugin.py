"""pixiu_medical's hook implementations: the `medical` domain, `pixiu medical` verbs, and the answer disclaimer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pixiu_medical
from pixiu import Domain, hookimpl
from pixiu_medical.formatter import format_record
from pixiu_medical.metrics import medical_metrics
from pixiu_medical.parser import parse_answer
from pixiu_medical.reward import medical_reward
from pixiu_medical.safety import add_disclaimer, mark_cut

PIXIU_HOOK_API = ">=1.2,<2"
"""The pixiu hook API versions this plugin works with."""

if TYPE_CHECKING:
    import click

DOMAIN = "medical"
_HERE = Path(__file__).resolve().parent


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register the `medical` domain: Huatuo-style medical Q&A from a knowledge graph."""
    register(
        Domain(
            name=DOMAIN,
            description="Medical Q&A from a knowledge graph, Huatuo-style (ROUGE-L, BLEU-4, fact recall, dose safety).",
            version=pixiu_medical.__version__,
            formatter=format_record,
            parser=parse_answer,
            metrics=medical_metrics,
            reward=medical_reward,
            default_config=_HERE / "configs" / "smollm2_135m_lora.yaml",
            sample_data=_HERE / "sample_data" / "medical_synthetic.jsonl",
            spiders=("pixiu_medical.spiders.xywy_diseases:XywyDiseaseSpider",),
        )
    )


@hookimpl
def register_commands(cli: click.Group) -> None:
    """Add `pixiu medical kg build | kg stats | instructions | csv-to-jsonl`."""
    from pixiu_medical.commands import group

    cli.add_command(group)


@hookimpl
def process_response(domain: str | None, text: str, adapter: str, finish_reason: str) -> str | None:
    """Append the medical disclaimer to every answer of an adapter trained on `medical`, whatever its served name.

    An answer cut by `max_tokens` (`finish_reason == "length"`) first gets a visible cut mark, so nobody
    takes half an answer for a whole one. An adapter of unknown domain (a folder not made by pixiu) gets
    the disclaimer too when served as `medical`: a needless disclaimer costs less than a missing one.
    """
    if not (domain == DOMAIN or (domain is None and adapter == DOMAIN)):
        return None
    return add_disclaimer(mark_cut(text) if finish_reason == "length" else text)
