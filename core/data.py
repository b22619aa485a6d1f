"""Chat examples -> token ids with the prompt masked out of the loss, packed into rows without padding waste."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from pixiu.domain import Messages

IGNORE_INDEX = -100
"""Label of tokens that do not count in the loss (the prompt, the system message, padding)."""

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, used when a base model's tokenizer has no chat template of its own."""


@dataclass(frozen=True)
class TokenizedExample:
    """Token ids of one conversation and its labels (`IGNORE_INDEX` where no loss is taken)."""

    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def render(tokenizer, messages: Messages, *, add_generation_prompt: bool = False) -> str:
    """Render messages with the tokenizer's chat template, or ChatML when it has none."""
    template = None if tokenizer.chat_template else DEFAULT_CHAT_TEMPLATE
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=template
    )


def fit_prompt(tokenizer, messages: Messages, max_tokens: int, reserve: int = 0) -> Messages:
    """Shorten the last user message (from its end) until the conversation plus `reserve` tokens fits."""
    messages = [dict(m) for m in messages]
    user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    for _ in range(8):
        length = len(tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]) + reserve
        if length <= max_tokens or user is None or not messages[user]["content"]:
            return messages
        content = messages[user]["content"]
        keep = int(len(content) * max_tokens / length) - 1  # proportional cut, refined by the loop
        messages[user]["content"] = content[: max(keep, 0)]
    return messages


def tokenize_example(tokenizer, messages: Messages, max_len: int) -> TokenizedExample:
    """Tokenise a conversation; every assistant turn is learned, everything else is masked.

    A conversation longer than `max_len` tokens is cut inside its last user message, never in an answer.
    """
    messages = fit_prompt(tokenizer, messages, max_len)
    input_ids: list[int] = []
    labels: list[int] = []
    rendered = ""
    for index, message in enumerate(messages):
        if message["role"] == "assistant":
            prefix = render(tokenizer, messages[:index], add_generation_prompt=True)
            _append(tokenizer, prefix[len(rendered) :], input_ids, labels, learn=False)
            rendered = prefix
        upto = render(tokenizer, messages[: index + 1])
        _append(tokenizer, upto[len(rendered) :], input_ids, labels, learn=message["role"] == "assistant")
        rendered = upto
    return TokenizedExample(input_ids[:max_len], labels[:max_len])


def _append(tokenizer, text: str, input_ids: list[int], labels: list[int], *, learn: bool) -> None:
    """Tokenise `text` and append it, with labels equal to the ids when `learn`."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    input_ids.extend(ids)
    labels.extend(ids if learn else [IGNORE_INDEX] * len(ids))


def pack(examples: list[TokenizedExample], row_tokens: int, seed: int) -> list[list[int]]:
    """Group example indices into rows of at most `row_tokens` tokens (best-fit decreasing), rows shuffled.

    Packed rows waste almost no compute on padding; attention stays within each example (see `collate`).
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)  # equal lengths land in different rows from epoch to epoch
    order.sort(key=lambda i: len(examples[i]), reverse=True)
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        size = len(examples[i])
        fits = [r for r, space in enumerate(free) if space >= size]
        if fits:
            best = min(fits, key=free.__getitem__)
            rows[best].append(i)
            free[best] -= size
        else:
            rows.append([i])
            free.append(row_tokens - size)
    rng.shuffle(rows)
    return rows


def collate(examples: list[TokenizedExample], rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Build a packed batch: position ids restart at 0 for each example so attention never crosses them.

    Transformers turns restarting `position_ids` (with no attention mask) into a block-causal mask.
    Row tails are padding with their own position run and no loss.
    """
    width = max(sum(len(examples[i]) for i in row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        start = 0
        for i in row:
            example = examples[i]
            end = start + len(example)
            input_ids[r, start:end] = torch.tensor(example.input_ids)
            labels[r, start:end] = torch.tensor(example.labels)
            position_ids[r, start:end] = torch.arange(len(example))
            start = end
        position_ids[r, start:] = torch.arange(width - start)
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}


class StepBatches:
    """The deterministic stream of packed batches: step `s` always gets the same rows, so resuming is exact."""

    def __init__(self, examples: list[TokenizedExample], row_tokens: int, rows_per_step: int, seed: int):
        self.examples = examples
        self.row_tokens = row_tokens
        self.rows_per_step = rows_per_step
        self.seed = seed
        self._epochs: dict[int, list[list[int]]] = {}

    def rows_in_epoch(self, epoch: int) -> list[list[int]]:
        """Rows of one pass over the data, packed with an epoch-specific shuffle."""
        if epoch not in self._epochs:
            self._epochs[epoch] = pack(self.examples, self.row_tokens, self.seed * 1_000_003 + epoch)
        return self._epochs[epoch]

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, row index within it) where step `step` starts."""
        first, epoch = step * self.rows_per_step, 0
        while first >= len(self.rows_in_epoch(epoch)):
            first -= len(self.rows_in_epoch(epoch))
            epoch += 1
        return epoch, first

    def rows_for_step(self, step: int) -> list[list[int]]:
        """The rows step `step` trains on, continuing into the next epoch when one runs out."""
        epoch, index = self.position(step)
        rows: list[list[int]] = []
        while len(rows) < self.rows_per_step:
            epoch_rows = self.rows_in_epoch(epoch)
            take = epoch_rows[index : index + self.rows_per_step - len(rows)]
            rows.extend(take)
            index += len(take)
            if index >= len(epoch_rows):
                epoch, index = epoch + 1, 0
        return rows
