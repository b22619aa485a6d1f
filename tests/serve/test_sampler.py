"""The vectorised sampler: greedy rows are argmax, seeds reproduce whatever the batch, top-p keeps the nucleus."""

import math
from collections import Counter

import torch

from pixiu.serve.request import SamplingParams
from pixiu.serve.sampler import adjust, sample, token_logprobs

GREEDY = SamplingParams(max_tokens=1)


def seeded(seed: int, temperature: float = 1.0, top_p: float = 1.0) -> tuple[SamplingParams, torch.Generator]:
    params = SamplingParams(max_tokens=1, temperature=temperature, top_p=top_p, seed=seed)
    return params, params.new_generator()


def test_greedy_rows_are_argmax_beside_sampled_rows():
    logits = torch.randn(5, 300, generator=torch.Generator().manual_seed(0))
    params, generator = seeded(1, temperature=2.0)
    rows = [GREEDY, params, GREEDY, params, GREEDY]
    tokens = sample(logits, rows, [None, generator, None, params.new_generator(), None])
    expected = logits.argmax(dim=-1).tolist()
    assert [tokens[i] for i in (0, 2, 4)] == [expected[i] for i in (0, 2, 4)]
    assert GREEDY.new_generator() is None


def test_a_seed_gives_the_same_tokens_alone_or_in_any_batch():
    logits = torch.randn(4, 500, generator=torch.Generator().manual_seed(1))
    params, alone = seeded(7, temperature=1.3, top_p=0.9)
    solo = [sample(logits[2:3], [params], [alone])[0] for _ in range(30)]
    others = [seeded(seed, temperature=0.8) for seed in (1, 2)]
    mine = params.new_generator()
    batched = []
    for _ in range(30):  # the same row among a greedy row and two other seeded rows
        tokens = sample(
            logits[[0, 1, 2, 3]], [GREEDY, others[0][0], params, others[1][0]], [None, others[0][1], mine, others[1][1]]
        )
        batched.append(tokens[2])
    assert solo == batched and len(set(solo)) > 3  # really sampled, and reproduced exactly
    different = seeded(8, temperature=1.3, top_p=0.9)
    assert [sample(logits[2:3], [different[0]], [different[1]])[0] for _ in range(30)] != solo


def test_top_p_samples_only_from_the_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().repeat(2, 1)
    nucleus, generator = seeded(3, top_p=0.6)  # 0.5 alone is short of 0.6; 0.5 + 0.3 reaches it
    full, full_generator = seeded(4)
    counts, all_counts = Counter(), Counter()
    for _ in range(4000):
        first, second = sample(logits, [nucleus, full], [generator, full_generator])
        counts[first] += 1
        all_counts[second] += 1
    assert set(counts) == {0, 1} and math.isclose(counts[0] / 4000, 0.5 / 0.8, abs_tol=0.03)
    assert set(all_counts) == {0, 1, 2, 3} and math.isclose(all_counts[3] / 4000, 0.05, abs_tol=0.015)


def test_low_temperature_is_nearly_greedy():
    logits = torch.randn(1, 200, generator=torch.Generator().manual_seed(5))
    params, generator = seeded(9, temperature=1e-3)
    assert {sample(logits, [params], [generator])[0] for _ in range(50)} == {int(logits.argmax())}


def test_bias_and_penalties_match_a_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.5, 3.0, -1.0], [1.0, 2.0, 0.5, 3.0, -1.0]])
    params = [
        SamplingParams(
            max_tokens=1, presence_penalty=0.5, frequency_penalty=0.75, logit_bias={2: 1.5, 4: -100.0}, logprobs=2
        ),
        GREEDY,
    ]
    adjusted = adjust(logits, params, [[3, 3, 1, 3], [3, 3]])  # the plain row ignores what it generated
    # token 1: once -> 2 - 0.5 - 0.75; token 2: +1.5; token 3: three times -> 3 - 0.5 - 3 * 0.75; token 4: -100
    expected = torch.tensor([1.0, 0.75, 2.0, 0.25, -101.0])
    assert torch.allclose(adjusted[0], expected) and torch.equal(adjusted[1], logits[1])
    tokens = sample(adjusted, params, [None, None])
    assert tokens == [2, 3]
    first, plain = token_logprobs(adjusted, params, tokens)
    norm = torch.logsumexp(expected, dim=0)
    assert plain is None and first.token == 2 and math.isclose(first.logprob, float(expected[2] - norm), rel_tol=1e-5)
    assert [t for t, _ in first.top] == [2, 0] and math.isclose(
        first.top[1][1], float(expected[0] - norm), rel_tol=1e-5
    )
