"""pixiu_law's hook implementations: registers the `law` domain (case facts -> charges, articles, prison term)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pixiu_law
from pixiu import Domain, WebPage, hookimpl
from pixiu_law.formatter import LawSettings, format_record
from pixiu_law.metrics import law_metrics
from pixiu_law.parser import parse_answer
from pixiu_law.reward import law_reward

PIXIU_HOOK_API = ">=1.3,<2"
"""The pixiu hook API versions this plugin works with."""

_HERE = Path(__file__).resolve().parent


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register the `law` domain: CAIL2018's charge, article and prison-term prediction (`plugins.law.tasks`)."""
    register(
        Domain(
            name="law",
            description="Criminal cases (CAIL2018-style): facts -> charges; with plugins.law.tasks, articles and term.",
            version=pixiu_law.__version__,
            formatter=format_record,
            parser=parse_answer,
            metrics=law_metrics,
            reward=law_reward,
            settings=LawSettings,
            default_config=_HERE / "configs" / "smollm2_135m_lora.yaml",
            sample_data=_HERE / "sample_data" / "cail_synthetic.jsonl",
            spiders=("pixiu_law.spiders.spp_guiding_cases:SppGuidingCaseSpider",),
        )
    )


@hookimpl
def register_web_pages(register: Callable[[WebPage], None]) -> None:
    """Add the case form (facts in, charges out, highlighted) to `pixiu serve`'s web app."""
    from pixiu_law.web import PAGE

    register(PAGE)
