"""PPO's arithmetic on the answer tokens of a batch of rollouts (Schulman et al. 2017; the RLHF form of Ziegler
et al. 2019): per-token rewards with a KL penalty, generalised advantage estimation, and the clipped losses.

Every tensor here holds one entry per answer token, in row-major order, with `rows` giving each token's
rollout; a rollout's tokens are contiguous, and its last token is where the reward model's score lands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def last_tokens(rows: torch.Tensor) -> torch.Tensor:
    """A mask of each rollout's last answer token."""
    last = torch.ones_like(rows, dtype=torch.bool)
    last[:-1] = rows[1:] != rows[:-1]
    return last


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, rows: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """Each token's reward: minus `kl_coef` times its log-ratio to the reference, plus its rollout's score at the
    rollout's last token."""
    rewards = -kl_coef * kl
    last = last_tokens(rows)
    return rewards.index_put((last.nonzero()[:, 0],), scores[rows[last]], accumulate=True)


def generalised_advantages(
    rewards: torch.Tensor, values: torch.Tensor, rows: torch.Tensor, *, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE(gamma, lambda) per token, computed backwards within each rollout (the value after its last token is 0),
    and the returns (advantage + value) the value head regresses to."""
    advantages = torch.zeros_like(values)
    last = last_tokens(rows).tolist()
    reward_list, value_list = rewards.tolist(), values.tolist()
    running, next_value = 0.0, 0.0
    for t in reversed(range(len(value_list))):
        if last[t]:
            running, next_value = 0.0, 0.0
        delta = reward_list[t] + gamma * next_value - value_list[t]
        running = delta + gamma * lam * running
        advantages[t] = running
        next_value = value_list[t]
    return advantages, advantages + values


def whiten(values: torch.Tensor, moments: tuple[float, float, float] | None = None) -> torch.Tensor:
    """`values` shifted and scaled to mean 0 and standard deviation 1 (only shifted for a single value).

    `moments` (count, sum, sum of squares) are those of the whole step when each rank holds a part of it; by
    default they are those of `values` alone.
    """
    count, total, squares = moments or (values.numel(), values.sum().item(), values.square().sum().item())
    mean = total / count
    if count < 2:
        return values - mean
    variance = max(squares - count * mean * mean, 0.0) / (count - 1)  # unbiased, as torch.std
    return (values - mean) / (math.sqrt(variance) + 1e-8)


@dataclass(frozen=True)
class PpoLoss:
    """One update's loss and what it says about the update."""

    loss: torch.Tensor
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    clip_fraction: torch.Tensor
    """Share of tokens whose policy ratio left [1 - clip, 1 + clip]."""


def ppo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    *,
    clip: float,
    value_clip: float,
    value_coef: float,
) -> PpoLoss:
    """The clipped surrogate policy loss plus `value_coef` times the clipped value loss, averaged over tokens."""
    ratio = torch.exp(logprobs - old_logprobs)
    policy = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip)).mean()
    clipped_values = old_values + (values - old_values).clamp(-value_clip, value_clip)
    value = 0.5 * torch.max((values - returns) ** 2, (clipped_values - returns) ** 2).mean()
    clip_fraction = ((ratio - 1).abs() > clip).float().mean()
    return PpoLoss(policy + value_coef * value, policy, value, clip_fraction)
