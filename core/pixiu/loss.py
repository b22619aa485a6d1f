"""Next-token loss computed only where it counts: the output head runs on labelled positions alone.

For charge prediction the answer is a few tokens after a long prompt, so skipping the vocabulary
projection (and its softmax) on prompt tokens saves a large share of every step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from pixiu.data import IGNORE_INDEX
from pixiu.seq2seq import is_encoder_decoder, seq2seq_labelled


def supports_selective_head(causal_lm: Any) -> bool:
    """True when logits are plainly `lm_head(hidden)`, so the head may run on a subset of positions."""
    config = causal_lm.config
    plain = getattr(config, "final_logit_softcapping", None) is None and getattr(config, "logits_scaling", 1) == 1
    return plain and hasattr(causal_lm, causal_lm.base_model_prefix) and causal_lm.get_output_embeddings() is not None


def labelled_loss(causal_lm: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed cross-entropy over the batch's labelled tokens, and how many there were.

    `causal_lm` is a transformers causal LM, or a peft wrapper of one.
    """
    logprobs, _ = token_logprobs(causal_lm, batch)
    return -logprobs.sum(), logprobs.numel()


def answer_logprobs(causal_lm: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the summed log-probability of its labelled tokens (the answer) and how many there were.

    The two tensors have one entry per batch row; the output head runs on labelled positions alone.
    """
    logprobs, rows = token_logprobs(causal_lm, batch)
    count = len(batch["labels"])
    sums = torch.zeros(count, dtype=logprobs.dtype, device=logprobs.device).index_add(0, rows, logprobs)
    return sums, torch.bincount(rows, minlength=count)


def token_logprobs(causal_lm: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probability (fp32) of every labelled token, in row-major order, and the batch row each one is in."""
    outputs = labelled_outputs(causal_lm, batch)
    return outputs.logprobs, outputs.rows


@dataclass(frozen=True)
class LabelledOutputs:
    """What a forward pass gives at the positions that predict labelled tokens, in row-major order."""

    logprobs: torch.Tensor
    """The fp32 log-probability of each labelled token."""
    rows: torch.Tensor
    """The batch row each labelled token is in."""
    hidden: torch.Tensor
    """The final hidden state at the position predicting each labelled token (a value head reads it)."""


def labelled_outputs(causal_lm: Any, batch: dict[str, torch.Tensor]) -> LabelledOutputs:
    """Log-probabilities and final hidden states at the labelled positions, the output head run on those alone."""
    prompt_learning = getattr(getattr(causal_lm, "active_peft_config", None), "is_prompt_learning", False)
    if hasattr(causal_lm, "get_base_model") and not prompt_learning:  # a peft wrapper: its LoRA layers live inside
        causal_lm = causal_lm.get_base_model()
    if is_encoder_decoder(causal_lm):  # T5: the decoder's positions are the answer's, no shift
        return LabelledOutputs(*seq2seq_labelled(causal_lm, batch))
    labels = batch["labels"]
    targets = torch.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]  # position t predicts token t+1; padding is unlabelled, so never a target
    keep = targets != IGNORE_INDEX
    rows = keep.nonzero()[:, 0]
    if prompt_learning:  # prefix/prompt tuning live in peft's forward; prompt tuning's virtual tokens come first
        output = causal_lm(input_ids=batch["input_ids"], output_hidden_states=True)
        width = labels.shape[1]
        logits, hidden = output.logits[:, -width:][keep], output.hidden_states[-1][:, -width:][keep]
    elif not supports_selective_head(causal_lm):
        output = causal_lm(input_ids=batch["input_ids"], use_cache=False, output_hidden_states=True)
        logits, hidden = output.logits[keep], output.hidden_states[-1][keep]
    else:
        decoder = getattr(causal_lm, causal_lm.base_model_prefix)
        hidden = decoder(input_ids=batch["input_ids"], use_cache=False).last_hidden_state[keep]
        logits = causal_lm.get_output_embeddings()(hidden)
    logprobs = -F.cross_entropy(logits.float(), targets[keep], reduction="none")
    return LabelledOutputs(logprobs, rows, hidden)
