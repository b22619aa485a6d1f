"""Preference losses on answer log-probabilities: DPO (sigmoid), IPO and SimPO on pairs, KTO on unpaired answers,
with the implicit rewards trl reports.

Every function takes per-pair tensors: summed answer log-probs under the policy (and, but for SimPO, under the
reference), and the answers' token counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NEEDS_REFERENCE = {"sigmoid": True, "ipo": True, "simpo": False, "rrhf": False}
"""Whether a loss compares against the reference model (the base with the adapter off)."""


@dataclass(frozen=True)
class PairLogprobs:
    """Summed answer log-probabilities of n pairs, and the answers' token counts."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor

    @classmethod
    def split(cls, sums: torch.Tensor, counts: torch.Tensor) -> PairLogprobs:
        """The 2n rows of a pair batch (n chosen answers, then their n rejected ones) as pairs."""
        n = len(sums) // 2
        return cls(sums[:n], sums[n:], counts[:n], counts[n:])

    def means(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token mean log-probs of the chosen and rejected answers."""
        return self.chosen / self.chosen_tokens.clamp(min=1), self.rejected / self.rejected_tokens.clamp(min=1)


@dataclass(frozen=True)
class PreferenceLoss:
    """Per-pair losses and the implicit rewards of both answers (their difference is the reward margin)."""

    losses: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor


def preference_loss(
    kind: str, beta: float, policy: PairLogprobs, reference: PairLogprobs | None, *, simpo_gamma: float = 0.5
) -> PreferenceLoss:
    """The `kind` loss ("sigmoid" = DPO, "ipo", "simpo", "rrhf") of each pair, and its rewards (detached).

    DPO's reward is beta times an answer's log-ratio to the reference; IPO's uses per-token mean log-probs;
    SimPO's is beta times the mean log-prob itself (it has no reference). RRHF (Yuan et al. 2023, Wombat's
    recipe) ranks the answers by mean log-prob with a hinge, plus the chosen answer's cross-entropy scaled by
    beta; its "rewards" are the mean log-probs.
    """
    if kind == "simpo":
        chosen, rejected = (beta * m for m in policy.means())
        losses = -F.logsigmoid(chosen - rejected - simpo_gamma)
        return PreferenceLoss(losses, chosen.detach(), rejected.detach())
    if kind == "rrhf":
        chosen, rejected = policy.means()
        losses = F.relu(rejected - chosen) - beta * chosen  # the rank loss, then the best answer's token-mean CE
        return PreferenceLoss(losses, chosen.detach(), rejected.detach())
    if reference is None:
        raise ValueError(f"the {kind} loss needs the reference model's log-probs")
    if kind == "sigmoid":
        chosen = beta * (policy.chosen - reference.chosen)
        rejected = beta * (policy.rejected - reference.rejected)
        losses = -F.logsigmoid(chosen - rejected)
    elif kind == "ipo":
        (policy_chosen, policy_rejected), (reference_chosen, reference_rejected) = policy.means(), reference.means()
        margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
        losses = (margin - 1 / (2 * beta)) ** 2
        chosen, rejected = beta * (policy_chosen - reference_chosen), beta * (policy_rejected - reference_rejected)
    else:
        raise ValueError(f"unknown preference loss {kind!r}; expected one of {', '.join(NEEDS_REFERENCE)}")
    return PreferenceLoss(losses, chosen.detach(), rejected.detach())


@dataclass(frozen=True)
class FeedbackLoss:
    """Per-answer KTO losses, the answers' implicit rewards, and the reference point they were compared with."""

    losses: torch.Tensor
    rewards: torch.Tensor
    reference_point: torch.Tensor


def kto_loss(
    policy: torch.Tensor,
    reference: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> FeedbackLoss:
    """KTO (Ethayarajh et al. 2024) on summed answer log-probs under the policy and the reference: a desirable
    answer's loss falls as beta times its log-ratio rises above the reference point, an undesirable one's as it
    falls below. The reference point is the batch's KL estimate `kl` (from mismatched prompt/answer pairs),
    clamped at 0 and detached, as the paper does."""
    point = kl.detach().clamp(min=0)
    ratios = policy - reference
    losses = torch.where(
        desirable,
        desirable_weight * (1 - torch.sigmoid(beta * (ratios - point))),
        undesirable_weight * (1 - torch.sigmoid(beta * (point - ratios))),
    )
    return FeedbackLoss(losses, beta * ratios.detach(), point)
