"""What the engine knows about one sequence: its prompt, its sampling parameters, its adapter and its progress."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from pixiu.serve.adapters import AdapterInfo
    from pixiu.serve.sampler import TokenLogprobs

Sink = Callable[[int | None, str | None], None]
"""Receives `(token_id, None)` for each generated token, then `(None, finish_reason)` exactly once.

Finish reasons: "stop" (an end-of-turn token), "length" (max_tokens), "cancelled", "error".
Called on the engine thread, so it must be quick and must not raise.
"""


@dataclass(frozen=True)
class SamplingParams:
    """How tokens are chosen for one request."""

    max_tokens: int
    temperature: float = 0.0
    """0 picks the most likely token (greedy); higher values sample more freely."""
    top_p: float = 1.0
    """Sample only from the smallest set of tokens whose probabilities add up to at least this."""
    seed: int | None = None
    """Seeds the request's own generator: the same seed gives the same answer, whatever else is in the batch."""
    presence_penalty: float = 0.0
    """Subtracted from the logit of every token already generated (OpenAI's presence penalty)."""
    frequency_penalty: float = 0.0
    """Times how often a token was generated, subtracted from its logit (OpenAI's frequency penalty)."""
    logit_bias: dict[int, float] = field(default_factory=dict)
    """Token id -> added to its logit before anything else."""
    logprobs: int | None = None
    """Record each chosen token's log-probability and this many top alternatives (None: record nothing)."""

    @property
    def penalised(self) -> bool:
        """Whether presence or frequency penalties apply."""
        return bool(self.presence_penalty or self.frequency_penalty)

    def new_generator(self) -> torch.Generator | None:
        """The request's own random generator, or None for greedy decoding."""
        if self.temperature <= 0:
            return None
        generator = torch.Generator(device="cpu")  # on the CPU whatever the model's device: a seed means one answer
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(self.seed)
        return generator


@dataclass(eq=False)
class EngineRequest:
    """One generation request as the engine tracks it (named apart from `fastapi.Request`)."""

    model: str
    """The adapter name the request asked for, or `BASE`."""
    prompt_ids: list[int]
    sampling: SamplingParams
    sink: Sink
    adapter: AdapterInfo | None = None
    """The adapter version the request runs on, fixed at submission (None: the plain base)."""
    slot: int | None = None
    generator: torch.Generator | None = None
    generated: int = 0
    output_ids: list[int] = field(default_factory=list)
    """Every token sampled so far (the penalties count them)."""
    logprobs: list[TokenLogprobs] = field(default_factory=list)
    """Per emitted token, when `sampling.logprobs` asks for them."""
    cancelled: bool = False
    cancel_reason: str = "cancelled"
    """The finish reason a cancelled request ends with ("stop" when a stop string ended it)."""
    finished: bool = False
