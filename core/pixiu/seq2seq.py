"""Encoder-decoder bases (T5, mT5): the encoder reads the conversation, the decoder writes the answer.

An example's encoder input is the conversation up to its last answer, rendered with the generation prompt (as
`pixiu.generate` renders a prompt); its labels are that answer's tokens and eos. Earlier answers of a multi-turn
conversation are context in the encoder input, not targets. Every decoder position is an answer position, so the
loss needs no prompt mask and no shift: decoder position t predicts label t.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pixiu.data import IGNORE_INDEX, TokenizedExample, collate, fit_prompt, render, tokenize_example
from pixiu.domain import Messages

ENCODER_DECODER_FAMILIES = ("t5", "mt5")
"""Encoder-decoder `model_type`s pixiu trains, evaluates and serves (transformers' AutoModelForSeq2SeqLM)."""

SEQ2SEQ_OBJECTIVES = ("sft",)
"""`train.method`s an encoder-decoder base trains with: the preference and RL recipes score decoder-only rows."""

SEQ2SEQ_METHODS = ("lora", "rslora", "dora", "loraplus", "pissa", "olora", "ia3", "adalora", "full")
"""`lora.method`s an encoder-decoder base trains with. Not prefix/prompt (pixiu's loss feeds their virtual tokens
to a decoder-only forward) nor freeze (its "last layers" would be the encoder's or the decoder's, ambiguously)."""


def is_encoder_decoder(config: Any) -> bool:
    """Whether a model config (or a model, or a peft wrapper: anything with `.config`) is an encoder-decoder."""
    config = getattr(config, "config", config)
    return bool(getattr(config, "is_encoder_decoder", False))


def peft_task(model: Any) -> str:
    """peft's task type for `model`: "SEQ_2_SEQ_LM" for an encoder-decoder, else "CAUSAL_LM"."""
    return "SEQ_2_SEQ_LM" if is_encoder_decoder(model) else "CAUSAL_LM"


@dataclass(frozen=True)
class Seq2SeqExample(TokenizedExample):
    """The encoder's token ids of one conversation and the decoder's labels (the answer and eos); `answer_cut`:
    the answer and eos were longer than `max_len` tokens, so its end (eos among it) was dropped."""

    def __len__(self) -> int:
        """The longer side, which is what a batch of such examples pads to."""
        return max(len(self.input_ids), len(self.labels))


def tokenize_seq2seq(tokenizer, messages: Messages, max_len: int) -> Seq2SeqExample:
    """Encoder ids of `messages` before the last answer (fitted to `max_len` as `pixiu.data.fit_prompt` fits a
    prompt, then cut from the left), and the last answer's ids plus eos as labels (cut to `max_len`)."""
    *prompt, last = messages
    if last["role"] != "assistant":  # nothing to learn: the recipe drops examples without labels
        prompt, answer = list(messages), []
    else:
        answer = tokenizer(last["content"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    text = render(tokenizer, fit_prompt(tokenizer, prompt, max_len), add_generation_prompt=True)
    input_ids = tokenizer(text, add_special_tokens=False)["input_ids"][-max_len:]
    return Seq2SeqExample(input_ids, answer[:max_len], answer_cut=len(answer) > max_len)


def collate_seq2seq(examples: list[Seq2SeqExample], indices: list[int], pad_id: int) -> dict[str, torch.Tensor]:
    """One example per row: encoder ids right-padded with their attention mask, labels padded with IGNORE_INDEX."""
    rows = [examples[i] for i in indices]
    width = max(len(e.input_ids) for e in rows)
    answer_width = max(max(len(e.labels) for e in rows), 1)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), answer_width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(rows):
        input_ids[row, : len(example.input_ids)] = torch.tensor(example.input_ids)
        attention_mask[row, : len(example.input_ids)] = 1
        labels[row, : len(example.labels)] = torch.tensor(example.labels, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


Tokenize = Callable[[Any, Messages, int], TokenizedExample]
Collate = Callable[[Any, list[int], int], dict[str, torch.Tensor]]


def example_codec(model: Any) -> tuple[Tokenize, Collate]:
    """The (tokenize, collate) pair for `model`'s family: `pixiu.data`'s for a decoder-only model, this module's
    for an encoder-decoder one."""
    if is_encoder_decoder(model):
        return tokenize_seq2seq, collate_seq2seq
    return tokenize_example, collate


def seq2seq_labelled(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fp32 log-probability of each labelled answer token (row-major), its batch row, and the decoder's final
    hidden state predicting it, from one teacher-forced pass of an encoder-decoder `model` (not a peft wrapper)."""
    labels = batch["labels"]
    output = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        decoder_input_ids=model.prepare_decoder_input_ids_from_labels(labels=labels),
        use_cache=False,
        output_hidden_states=True,
    )
    keep = labels != IGNORE_INDEX
    logprobs = -F.cross_entropy(output.logits[keep].float(), labels[keep], reduction="none")
    return logprobs, keep.nonzero()[:, 0], output.decoder_hidden_states[-1][keep]


def seq2seq_problems(model_type: str, *, objective: str, method: str) -> list[str]:
    """What an encoder-decoder run with `train.method=objective` and `lora.method=method` cannot do, each with
    what to do instead; empty when it can train."""
    problems = []
    if objective not in SEQ2SEQ_OBJECTIVES:
        problems.append(
            f"train.method={objective} needs a decoder-only base; this {model_type} (encoder-decoder) base trains "
            "with train.method=sft only: pass --method sft, or a decoder-only --base (docs/model-families.md)"
        )
    if method not in SEQ2SEQ_METHODS:
        problems.append(
            f"lora.method={method} does not train an encoder-decoder base ({model_type}); use one of "
            f"{', '.join(SEQ2SEQ_METHODS)}"
        )
    return problems
