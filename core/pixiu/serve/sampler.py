"""The next token of every row of a batch in one pass: greedy rows by argmax, the others by temperature and top-p.

Before choosing, logits are adjusted as OpenAI's API describes, each adjustment vectorised over the rows
that ask for it: `logit_bias` is added, then for every token already generated the presence penalty and
`count * frequency_penalty` are subtracted. Log-probabilities (`logprobs`) are those of the adjusted logits
before temperature and top-p, as vLLM reports them by default.

Each sampling row draws its one random number from its request's own generator, so a seeded request
gives the same tokens alone or in any batch (as in vLLM, per-request generators make seeds independent
of the batch). The draw picks a token by inverse transform over the row's nucleus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from pixiu.serve.request import SamplingParams


@dataclass(frozen=True)
class TokenLogprobs:
    """A chosen token's log-probability and the most likely alternatives at its position."""

    token: int
    logprob: float
    top: list[tuple[int, float]]
    """(token, logprob) of the `SamplingParams.logprobs` most likely tokens, most likely first."""


def sample(
    logits: torch.Tensor, params: Sequence[SamplingParams], generators: Sequence[torch.Generator | None]
) -> list[int]:
    """The next token for each row of `logits` (rows, vocab, already `adjust`ed); rows with no generator are greedy."""
    tokens = logits.argmax(dim=-1)
    rows = [i for i, generator in enumerate(generators) if generator is not None]
    if rows:
        on = logits.device
        index = torch.tensor(rows, device=on)
        temperature = torch.tensor([params[i].temperature for i in rows], dtype=torch.float32, device=on).unsqueeze(1)
        top_p = torch.tensor([params[i].top_p for i in rows], dtype=torch.float32, device=on).unsqueeze(1)
        # drawn on the CPU, from each request's own CPU generator, so a seed gives the same answer on any device
        cpu = torch.device("cpu")
        draws = torch.cat([torch.rand(1, generator=generators[i], dtype=torch.float64, device=cpu) for i in rows])
        draws = draws.to(on)
        tokens[index] = _sample_rows(logits[index].float() / temperature, top_p, draws)
    return tokens.tolist()


def adjust(logits: torch.Tensor, params: Sequence[SamplingParams], outputs: Sequence[Sequence[int]]) -> torch.Tensor:
    """`logits` (rows, vocab) as float32, each row's logit bias added and its penalties subtracted.

    `outputs` are the tokens each row generated so far.
    """
    logits = logits.float()
    on = logits.device
    biased = [(i, token, bias) for i, p in enumerate(params) for token, bias in p.logit_bias.items()]
    penalised = [i for i, p in enumerate(params) if p.penalised and outputs[i]]
    if biased or penalised:
        logits = logits.clone()  # the model's output stays as it was
    if biased:
        bias_rows, bias_tokens, bias_values = zip(*biased, strict=True)
        logits.index_put_(
            (torch.tensor(bias_rows, device=on), torch.tensor(bias_tokens, device=on)),
            torch.tensor(bias_values, dtype=torch.float32, device=on),
            accumulate=True,
        )
    if penalised:
        counts = torch.zeros(len(penalised), logits.shape[1], device=on)
        rows = torch.tensor([k for k, i in enumerate(penalised) for _ in outputs[i]], device=on)
        tokens = torch.tensor([token for i in penalised for token in outputs[i]], device=on)
        counts.index_put_((rows, tokens), torch.ones(len(tokens), device=on), accumulate=True)
        presence = torch.tensor([params[i].presence_penalty for i in penalised], device=on).unsqueeze(1)
        frequency = torch.tensor([params[i].frequency_penalty for i in penalised], device=on).unsqueeze(1)
        index = torch.tensor(penalised, device=on)
        logits[index] -= counts * frequency + (counts > 0) * presence
    return logits


def token_logprobs(
    logits: torch.Tensor, params: Sequence[SamplingParams], chosen: list[int]
) -> list[TokenLogprobs | None]:
    """Logprobs of the chosen tokens and their top alternatives under `adjust`ed logits, for rows that ask for them."""
    result: list[TokenLogprobs | None] = [None] * len(chosen)
    rows = [i for i, p in enumerate(params) if p.logprobs is not None]
    if not rows:
        return result
    logprobs = torch.log_softmax(logits[torch.tensor(rows, device=logits.device)], dim=-1)
    counts = [params[i].logprobs or 0 for i in rows]
    top_values, top_tokens = logprobs.topk(max(counts), dim=-1)
    for k, (i, count) in enumerate(zip(rows, counts, strict=True)):
        top = list(zip(top_tokens[k, :count].tolist(), top_values[k, :count].tolist(), strict=False))
        result[i] = TokenLogprobs(chosen[i], float(logprobs[k, chosen[i]]), top)
    return result


def _sample_rows(scaled: torch.Tensor, top_p: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """Tokens for temperature-scaled logits (rows, vocab), keeping each row's top-p nucleus; `draws` in [0, 1)."""
    probs, order = torch.softmax(scaled, dim=-1).sort(dim=-1, descending=True)
    outside = (probs.cumsum(dim=-1) - probs > top_p) & (top_p < 1)  # the smallest set reaching top_p stays
    probs = probs.masked_fill(outside, 0.0).double()
    cdf = probs.cumsum(dim=-1)
    picked = torch.searchsorted(cdf, (draws * cdf[:, -1]).unsqueeze(1), right=True)
    return order.gather(1, picked.clamp(max=probs.shape[1] - 1)).squeeze(1)
