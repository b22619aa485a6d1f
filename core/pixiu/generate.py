"""Batched greedy generation for evaluation: prompts grouped by length, left-padded, stopped at end of turn."""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from pixiu.data import fit_prompt, render
from pixiu.domain import Messages

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
    texts = [
        render(tokenizer, fit_prompt(tokenizer, p, max_prompt_tokens), add_generation_prompt=True) for p in prompts
    ]
    encoded = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    stops = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    answers = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in chunk)
        input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, i in enumerate(chunk):
            input_ids[row, width - len(encoded[i]) :] = torch.tensor(encoded[i])
            attention_mask[row, width - len(encoded[i]) :] = 1
        output = model.generate(  # the batch is built on the CPU; the model may sit on a GPU
            input_ids=input_ids.to(model.device),
            attention_mask=attention_mask.to(model.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=pad_id,
        )
        for row, i in enumerate(chunk):
            answers[i] = clean_answer(tokenizer.decode(output[row, width:], skip_special_tokens=True))
        if on_batch:
            on_batch(len(chunk))
    return answers
