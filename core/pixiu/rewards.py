"""Calling a domain's reward function (`Domain.reward`) the way training needs it: checked, and blamed by plugin."""

from __future__ import annotations

import math
from typing import Any

from pixiu.domain import Domain, Messages
from pixiu.errors import PixiuError


class RewardError(PixiuError):
    """A domain's reward function raised or returned something that is not a finite number."""


def plugin_of(domain: Domain) -> str:
    """The package that brought `domain` (where its formatter lives), to name it in errors."""
    return domain.formatter.__module__.split(".")[0]


def check_has_reward(domain: Domain) -> None:
    """Refuse a domain without a reward function, before anything is loaded."""
    if domain.reward is None:
        raise PixiuError(
            f"domain {domain.name!r} ({plugin_of(domain)}) has no reward function (Domain.reward), which "
            "--method grpo optimises; train it with --method sft or dpo, or give the domain a reward"
        )


def score(domain: Domain, prompt: Messages, answer: str, reference: Any) -> float:
    """The domain's reward for `answer`; a RewardError naming the plugin when the function raises or returns
    anything but a finite number."""
    assert domain.reward is not None  # checked by check_has_reward before training
    try:
        value = domain.reward(prompt, answer, reference)
    except Exception as exc:  # a plugin's bug: blame it by name, not with pixiu's traceback
        raise RewardError(
            f"the reward function of domain {domain.name!r} (plugin {plugin_of(domain)}) raised "
            f"{type(exc).__name__}: {exc} (on the answer {answer[:60]!r})"
        ) from exc
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RewardError(
            f"the reward function of domain {domain.name!r} (plugin {plugin_of(domain)}) returned {value!r} "
            f"for the answer {answer[:60]!r}; it must return a finite number"
        )
    return float(value)
