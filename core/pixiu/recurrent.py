"""Recurrent bases (RWKV): a fixed-size state per sequence instead of a KV cache, and what that changes.

A recurrent network reads its input strictly left to right and ignores `attention_mask`, so:

- training needs no mask: batches are right-padded, and the padding after a row's last token never reaches the
  positions before it (the loss never reads the padding's own predictions);
- generation must not left-pad: pad tokens fed before a prompt change the state it starts from. `generate`
  prefills every prompt alone, then decodes the rows together over their stacked states;
- a state is five (batch, hidden, layers) tensors that the model updates in place (`new_state`): joining rows is
  concatenation along the batch axis and dropping rows is index selection (`merge_states`, `select_rows`);
- transformers' RWKV mixes the rows of a batch in one-token steps (`fix_batched_steps` says how), so `prepare`
  gives its layers a one-token path that keeps them apart.

transformers' RWKV also halves the output weights of every `rescale_every`-th block when it leaves training
mode (a guard against fp16 overflow in long inference), but a LoRA delta on those layers is not halved with
them, so an adapter would compute something else in evaluation and serving than it learned; `run_unscaled`
turns the rescaling off, which leaves the maths exactly that of training.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

import torch

RECURRENT_TYPES = ("rwkv",)
"""`model_type`s whose cache is a recurrent state (transformers' `state=` argument), not attention keys and values."""


def is_recurrent(config: Any) -> bool:
    """Whether a model with `config` (a transformers config, or a model or peft wrapper that has one) is recurrent."""
    config = getattr(config, "config", config)
    return getattr(config, "model_type", None) in RECURRENT_TYPES


def method_refusal(config: Any, method: str) -> str | None:
    """Why `lora.method` cannot train on a base with `config`, and what to do instead; None when it can."""
    if not is_recurrent(config) or method not in ("prefix", "prompt"):
        return None
    how = {
        "prefix": "puts learned keys and values into every attention layer's cache",
        "prompt": "sizes its virtual tokens by the attention heads and feeds them once, through the attention cache",
    }[method]
    return (
        f"lora.method={method} cannot train a recurrent {config.model_type} base: peft's {method} tuning {how}, and a "
        "recurrent network has no attention cache (it keeps a fixed-size state instead). Use lora.method lora, "
        "rslora, dora, ia3, adalora, pissa, olora, loraplus, full or freeze"
    )


def run_unscaled(model: Any) -> None:
    """Turn off RWKV's inference-time weight rescaling on a freshly loaded `model` (before its first forward pass),
    so a LoRA adapter on `attention.output` / `feed_forward.value` means the same in training and inference.

    Without it, transformers divides those base weights by 2**(block // rescale_every) in eval mode and halves the
    hidden state every `rescale_every` blocks; the adapter's delta is not divided, so the adapted layer's output is
    off by that factor. Unscaled, eval computes what training does (fp32 and bf16 have the range for it; fp16 may
    overflow on long inputs, as it would in training).
    """
    config = model.config
    if is_recurrent(config) and config.rescale_every:
        inner = getattr(model, model.base_model_prefix, model)
        assert not getattr(inner, "layers_are_rescaled", False), "run_unscaled runs before the first forward pass"
        config.rescale_every = 0


def prepare(model: Any) -> None:
    """Ready a freshly loaded recurrent `model` (nothing for other families): rescaling off (`run_unscaled`) and
    batched one-token steps fixed (`fix_batched_steps`)."""
    if is_recurrent(model):
        run_unscaled(model)
        fix_batched_steps(model)


def fix_batched_steps(model: Any) -> None:
    """Make every RWKV layer of `model` take the previous token from its state with the batch axis kept.

    transformers' RWKV (5.x) reads a one-token step's previous hidden state as `state[i][:, :, layer]`, shaped
    (batch, hidden), and mixes it with the (batch, 1, hidden) input, which broadcasts to (batch, batch, hidden): with
    more than one row, each row is mixed with every other row's state (logits come out (batch, batch, vocab)). Its
    layers here take the same path for one token as for many: the state's last hidden state, then the input shifted.
    """
    from transformers.models.rwkv.modeling_rwkv import RwkvFeedForward, RwkvSelfAttention

    for module in model.modules():
        if isinstance(module, RwkvSelfAttention):
            module.extract_key_value = MethodType(_attention_inputs, module)  # type: ignore[method-assign]
        elif isinstance(module, RwkvFeedForward):
            module.forward = MethodType(_feed_forward, module)  # type: ignore[method-assign]


def _shifted(layer: Any, hidden: torch.Tensor, state: list[torch.Tensor] | None, index: int) -> torch.Tensor:
    """Each position's previous hidden state (batch, length, hidden): the state's `index` tensor (zeros without a
    state) for the first position, the input itself for the others."""
    if state is None:
        first = torch.zeros_like(hidden[:, :1])
    else:
        first = state[index][:, :, layer.layer_id].unsqueeze(1).to(hidden.dtype)
    return torch.cat([first, hidden[:, :-1]], dim=1)


def _attention_inputs(self: Any, hidden: torch.Tensor, state: list[torch.Tensor] | None = None) -> tuple:
    """`RwkvSelfAttention.extract_key_value` with the batch axis kept for one-token steps (`fix_batched_steps`)."""
    shifted = _shifted(self, hidden, state, 1)
    key = hidden * self.time_mix_key + shifted * (1 - self.time_mix_key)
    value = hidden * self.time_mix_value + shifted * (1 - self.time_mix_value)
    receptance = hidden * self.time_mix_receptance + shifted * (1 - self.time_mix_receptance)
    key, value, receptance = self.key(key), self.value(value), torch.sigmoid(self.receptance(receptance))
    if state is not None:
        state[1][:, :, self.layer_id] = hidden[:, -1]
    return receptance, key, value, state


def _feed_forward(self: Any, hidden: torch.Tensor, state: list[torch.Tensor] | None = None) -> tuple:
    """`RwkvFeedForward.forward` with the batch axis kept for one-token steps (`fix_batched_steps`)."""
    shifted = _shifted(self, hidden, state, 0)
    key = hidden * self.time_mix_key + shifted * (1 - self.time_mix_key)
    receptance = hidden * self.time_mix_receptance + shifted * (1 - self.time_mix_receptance)
    value = self.value(torch.square(torch.relu(self.key(key))))
    if state is not None:
        state[0][:, :, self.layer_id] = hidden[:, -1]
    return torch.sigmoid(self.receptance(receptance)) * value, state


def new_state(config: Any, dtype: torch.dtype, device: torch.device | str | None = None) -> list[torch.Tensor]:
    """The empty state of one sequence, as RWKV makes it: the two token-shift tensors in the model's `dtype`, the
    three attention accumulators in float32 (the running maximum at -1e30)."""
    shape = (1, config.hidden_size, config.num_hidden_layers)
    state = [torch.zeros(shape, dtype=dtype if i <= 1 else torch.float32, device=device) for i in range(5)]
    state[4] -= 1e30
    return state


def merge_states(states: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """One state holding the rows of `states` in order (concatenated along the batch axis; no padding needed)."""
    return [torch.cat([state[i] for state in states]) for i in range(len(states[0]))]


def select_rows(state: list[torch.Tensor], rows: torch.Tensor | slice) -> list[torch.Tensor]:
    """A state with only `rows` of `state` (views for a slice, copies for an index tensor)."""
    return [tensor[rows] for tensor in state]


@torch.inference_mode()
def generate(
    model: Any,
    encoded: list[list[int]],
    *,
    max_new_tokens: int,
    stops: list[int],
    temperature: float = 0.0,
) -> list[list[int]]:
    """Each prompt's continuation, as token ids ending with the stop token when the model wrote one.

    Every prompt is prefilled alone (no padding enters any state), then all rows decode together over their
    stacked states, one token per forward pass, until each has stopped or written `max_new_tokens`.

    Args:
        model: A recurrent causal LM (or a peft wrapper of one) taking `state=`.
        encoded: Prompt token ids, one list per row.
        max_new_tokens: Tokens written per row at most.
        stops: Token ids that end a row.
        temperature: 0 for greedy decoding; else plain sampling at this temperature (no top-k or top-p).
    """
    device = model.device
    states, logits = [], []
    for ids in encoded:
        output = model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1)
        states.append(output.state)
        logits.append(output.logits[:, -1])
    state, last = merge_states(states), torch.cat(logits)
    completions: list[list[int]] = [[] for _ in encoded]
    running = torch.ones(len(encoded), dtype=torch.bool, device=device)
    stop_ids = torch.tensor(stops, device=device)
    for step in range(max_new_tokens):
        if temperature > 0:
            tokens = torch.multinomial(torch.softmax(last.float() / temperature, dim=-1), 1).squeeze(1)
        else:
            tokens = last.argmax(dim=-1)
        for row in running.nonzero().squeeze(1).tolist():
            completions[row].append(int(tokens[row]))
        running &= ~torch.isin(tokens, stop_ids)
        if not running.any() or step == max_new_tokens - 1:
            break
        # finished rows keep decoding (their tokens are dropped): the batch keeps one shape, as HF generate's does
        last = model(input_ids=tokens[:, None], state=state, use_cache=True).logits[:, -1]
    return completions
