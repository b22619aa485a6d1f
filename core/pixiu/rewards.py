"""Calling a domain's reward function (`Domain.reward`) the way training needs it: checked, and blamed by plugin."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pixiu.domain import Domain, Example, Messages
from pixiu.errors import PixiuError
from pixiu.evaluation import reference_of

if TYPE_CHECKING:
    from pixiu.distributed import Ranks


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
            "--method grpo (and ppo with ppo.reward=domain) optimises; train it with --method sft or dpo, or give "
            "the domain a reward"
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


def mean_rewards(domain: Domain, examples: Sequence[Example], answers: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Each variant's mean domain reward over its answers to `examples` (the held-out evaluation's answers)."""
    means = {}
    for variant, texts in answers.items():
        given = [
            score(domain, e.messages[:-1], t, reference_of(domain, e)) for e, t in zip(examples, texts, strict=True)
        ]
        means[variant] = round(sum(given) / len(given), 4)
    return means


def rollout_scores(
    compute: Callable[[], list[float]],
    *,
    ranks: Ranks,
    domain: Domain,
    step: int,
    run_dir: Path,
    save: Callable[[int], None],
    since: int,
    save_every: int,
) -> torch.Tensor:
    """The sampled answers' rewards from `compute`. When the domain's reward raises on any rank, every rank stops
    together before `step` + 1: rank 0 first checkpoints (`save`) the steps this process finished (since step
    `since`) after the last `save_every` checkpoint, and the error says what failed and how to go on."""
    failure: RewardError | None = None
    try:
        scores = compute()
    except RewardError as exc:
        failure, scores = exc, []
    if not ranks.sum(failure is not None)[0]:
        return torch.tensor(scores)
    if ranks.is_main and step > since and step % save_every:  # keep every finished step
        save(step)
    how = f"continue with: pixiu domain train {domain.name} --resume --output {run_dir}"
    if failure is None:
        raise PixiuError(
            f"another training process's reward failed before step {step + 1}; its error says why, then {how}"
        )
    raise PixiuError(
        f"{failure}\nThe run stopped before step {step + 1}, with its checkpoints kept; fix the plugin, then {how}"
    ) from failure
