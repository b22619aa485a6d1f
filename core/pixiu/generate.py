"""Batched generation: greedy answers for evaluation (prompts grouped by length, left-padded, stopped at end of
turn), and sampled completions for reinforcement learning."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch

from pixiu import recurrent
from pixiu.data import IGNORE_INDEX, TokenizedExample, fit_prompt, render
from pixiu.domain import Messages
from pixiu.seq2seq import is_encoder_decoder

END_OF_TURN = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>")
"""Markers after which a chat model's answer is over, even where the tokenizer does not treat them as special."""
_CHAT_TOKEN = re.compile(r"<\|im_start\|>(?:system|user|assistant)?\s*|<\|[^|<>\s]{1,40}\|>")
"""Any other chat-template token left in decoded text, such as <|im_start|> with the role it opens."""


def clean_answer(text: str) -> str:
    """The model's answer without chat tokens: cut at the first end-of-turn marker, other `<|…|>` tokens dropped."""
    for marker in END_OF_TURN:
        text = text.split(marker, 1)[0]
    return _CHAT_TOKEN.sub("", text).strip()


def stop_token_ids(tokenizer, model) -> list[int]:
    """Token ids that end an answer: the tokenizer's and the generation config's end-of-sequence tokens."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)


def prompt_ids(tokenizer, prompts: list[Messages], max_prompt_tokens: int) -> list[list[int]]:
    """Token ids of each prompt (chat messages without the answer) with the generation prompt, cut to fit."""
    texts = [
        render(tokenizer, fit_prompt(tokenizer, p, max_prompt_tokens), add_generation_prompt=True) for p in prompts
    ]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def left_padded(encoded: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids as one left-padded batch, and its attention mask."""
    width = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


@torch.inference_mode()
def generate_answers(
    model,
    tokenizer,
    prompts: list[Messages],
    *,
    max_prompt_tokens: int,
    max_new_tokens: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy answers to each prompt (chat messages without the final answer), in the order given."""
    encoded = prompt_ids(tokenizer, prompts, max_prompt_tokens)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    stops = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    answers = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        tails = continuations(
            model, [encoded[i] for i in chunk], pad_id=pad_id, stops=stops, max_new_tokens=max_new_tokens
        )
        for tail, i in zip(tails, chunk, strict=True):
            answers[i] = clean_answer(tokenizer.decode(tail, skip_special_tokens=True))
        if on_batch:
            on_batch(len(chunk))
    return answers


@torch.inference_mode()
def sample_completions(
    model, tokenizer, encoded: list[list[int]], *, samples: int, max_new_tokens: int, temperature: float
) -> list[list[int]]:
    """`samples` sampled completions of each prompt's token ids (plain temperature sampling, no top-k or top-p),
    as token ids ending with the stop token when the model wrote one; the k-th sample of prompt i is at i*samples+k.
    """
    stops = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    rows = [ids for ids in encoded for _ in range(samples)]
    return continuations(
        model, rows, pad_id=pad_id, stops=stops, max_new_tokens=max_new_tokens, temperature=temperature
    )


def continuations(
    model, encoded: list[list[int]], *, pad_id: int, stops: list[int], max_new_tokens: int, temperature: float = 0.0
) -> list[list[int]]:
    """Each prompt's generated token ids, ending with the stop token when the model wrote one: greedy when
    `temperature` is 0, else plain temperature sampling (no top-k or top-p). Prompts are left-padded into one
    batch, except for a recurrent base, where padding would change the state (`pixiu.recurrent.generate`)."""
    if recurrent.is_recurrent(model):
        return recurrent.generate(model, encoded, max_new_tokens=max_new_tokens, stops=stops, temperature=temperature)
    input_ids, attention_mask = left_padded(encoded, pad_id)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature > 0
        else {"do_sample": False}
    )
    output = model.generate(  # the batch is built on the CPU; the model may sit on a GPU
        input_ids=input_ids.to(model.device),
        attention_mask=attention_mask.to(model.device),
        max_new_tokens=max_new_tokens,
        eos_token_id=stops,
        pad_token_id=pad_id,
        **sampling,
    )
    answer_start = (
        1 if is_encoder_decoder(model) else input_ids.shape[1]
    )  # T5 returns its decoder start, then the answer
    completions = []
    for row in output[:, answer_start:].tolist():
        end = next((i + 1 for i, token in enumerate(row) if token in stops), len(row))
        completions.append(row[:end])
    return completions


def rollout_examples(prompts: Sequence[list[int]], completions: Sequence[list[int]]) -> list[TokenizedExample]:
    """Each prompt's token ids followed by its sampled completion, only the completion labelled: the rows of a
    policy-gradient step."""
    return [TokenizedExample(p + c, [IGNORE_INDEX] * len(p) + c) for p, c in zip(prompts, completions, strict=True)]
