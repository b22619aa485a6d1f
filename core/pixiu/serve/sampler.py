"""The next token of every row of a batch in one pass: greedy rows by argmax, the others by temperature and top-p.

Each sampling row draws its one random number from its request's own generator, so a seeded request
gives the same tokens alone or in any batch (as in vLLM, per-request generators make seeds independent
of the batch). The draw picks a token by inverse transform over the row's nucleus.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pixiu.serve.request import SamplingParams


def sample(logits: torch.Tensor, params: Sequence[SamplingParams],
           generators: Sequence[torch.Generator | None]) -> list[int]:
    """The next token for each row of `logits` (rows, vocab); rows without a generator are greedy."""
    tokens = logits.argmax(dim=-1)
    rows = [i for i, generator in enumerate(generators) if generator is not None]
    if rows:
        index = torch.tensor(rows)
        temperature = torch.tensor([params[i].temperature for i in rows], dtype=torch.float32).unsqueeze(1)
        top_p = torch.tensor([params[i].top_p for i in rows], dtype=torch.float32).unsqueeze(1)
        draws = torch.cat([torch.rand(1, generator=generators[i], dtype=torch.float64) for i in rows])
        tokens[index] = _sample_rows(logits[index].float() / temperature, top_p, draws)
    return tokens.tolist()


def _sample_rows(scaled: torch.Tensor, top_p: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Tokens for temperature-scaled logits (rows, vocab), keeping each row's top-p nucleus; `draws` in [0, 1)."""
    probs, order = torch.softmax(scaled, dim=-1).sort(dim=-1, descending=True)
    outside = (probs.cumsum(dim=-1) - probs > top_p) & (top_p < 1)  # the smallest set reaching top_p stays
    probs = probs.masked_fill(outside, 0.0).double()
    cdf = probs.cumsum(dim=-1)
    picked = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(1), right=True)
    return order.gather(1, picked.clamp(max=probs.shape[1] - 1)).squeeze(1)
