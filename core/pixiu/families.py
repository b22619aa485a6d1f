"""Base families: which layers LoRA adapts, and the chat template used when a tokenizer has none.

Both are chosen by the base's `config.model_type`. A family missing from `LORA_TARGETS` gets every linear
layer but the output head (peft's "all-linear"); a family missing from `FALLBACK_TEMPLATES` gets ChatML.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.pytorch_utils import Conv1D

from pixiu.data import DEFAULT_CHAT_TEMPLATE
from pixiu.errors import ConfigError

AUTO = "auto"
"""`lora.target_modules: auto`: the family's own layers from `LORA_TARGETS`."""

_LLAMA_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_NEOX_STYLE = ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h")
_GLM_STYLE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_up_proj", "down_proj")

LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": _LLAMA_STYLE,
    "mistral": _LLAMA_STYLE,
    "qwen2": _LLAMA_STYLE,
    "gemma": _LLAMA_STYLE,
    "gemma2": _LLAMA_STYLE,
    "gemma3_text": _LLAMA_STYLE,
    # Mixture of experts: transformers 5 keeps the routed experts as fused 3-D parameters, not linear layers, so
    # LoRA adapts attention only: peft >= 0.22 maps `gate_proj`/`up_proj`/`down_proj` of an MoE model onto its
    # fused routed experts (target_parameters), which per-row serving cannot route; the router is left alone too.
    "qwen2_moe": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mixtral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2": ("c_attn", "c_proj", "c_fc"),  # transformers' Conv1D (transposed weight); c_attn is the fused q/k/v
    "bloom": _NEOX_STYLE,  # query_key_value: fused q/k/v
    "gpt_neox": _NEOX_STYLE,
    "opt": ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"),
    "glm": _GLM_STYLE,  # gate_up_proj: the fused gate and up projections
    "glm4": _GLM_STYLE,
    # recurrent: attention.{key,value,receptance,output} and feed_forward.{key,receptance,value}
    "rwkv": ("key", "value", "receptance", "output"),
    "t5": ("q", "k", "v", "o", "wi", "wo"),  # encoder-decoder: self- and cross-attention share the names
    "mt5": ("q", "k", "v", "o", "wi_0", "wi_1", "wo"),  # wi_0/wi_1: the gated feed-forward
}
"""LoRA targets by `model_type`: every attention and feed-forward projection of the family (tests check them
against the real module names of each tiny model)."""

IA3_MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # peft's own table covers the other families; these follow its llama entry (keys, values, and the
    # feed-forward output, scaled on its input)
    "glm": (("k_proj", "v_proj", "down_proj"), ("down_proj",)),
    "glm4": (("k_proj", "v_proj", "down_proj"), ("down_proj",)),
    # the routed experts are fused parameters, not layers (see `LORA_TARGETS`): keys and values only
    "qwen2_moe": (("k_proj", "v_proj"), ()),
    # both the attention's and the feed-forward's key/value layers are named `key` / `value`: the keys' outputs
    # and the values' inputs are scaled (the feed-forward's input to `value` is IA3's own l_ff)
    "rwkv": (("key", "value"), ("value",)),
}
"""IA3's (target, feed-forward) layer names by `model_type`, for the families peft's table lacks."""


def ia3_modules(model_type: str) -> dict[str, Any]:
    """IA3Config's `target_modules` and `feedforward_modules` for a `model_type` base peft has no defaults for;
    empty when peft has its own."""
    if model_type not in IA3_MODULES:
        return {}
    targets, feedforward = IA3_MODULES[model_type]
    return {"target_modules": list(targets), "feedforward_modules": list(feedforward)}


HUMAN_ASSISTANT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Human: ' + message['content'] + '\n' }}"
    "{% else %}{{ '### Assistant: ' + message['content'] + eos_token + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Assistant: ' }}{% endif %}"
)
"""Plain `### Human:` / `### Assistant:` turns (Baize, Phoenix, Dolly-era bases), each answer ended by eos."""

LLAMA2_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '[INST] <<SYS>>\n' + message['content'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{% if loop.first or messages[loop.index0 - 1]['role'] != 'system' %}{{ '[INST] ' }}{% endif %}"
    "{{ message['content'] + ' [/INST]' }}"
    "{% else %}{{ ' ' + message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)
"""Llama-2 / Mistral `[INST] ... [/INST] answer</s>` turns, a system message in `<<SYS>>` inside the first one."""

GEMMA_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<start_of_turn>user\n' + message['content'] + '\n\n' }}"
    "{% else %}"
    "{% if message['role'] == 'assistant' %}{{ '<start_of_turn>model\n' }}"
    "{% elif loop.first or messages[loop.index0 - 1]['role'] != 'system' %}{{ '<start_of_turn>user\n' }}{% endif %}"
    "{{ message['content'] + '<end_of_turn>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
"""Gemma's `<start_of_turn>user` / `<start_of_turn>model` turns; a system message opens the first user turn."""

FALLBACK_TEMPLATES: dict[str, str] = {
    **dict.fromkeys(("gpt2", "bloom", "gpt_neox", "opt"), HUMAN_ASSISTANT_TEMPLATE),
    # RWKV-4 (Pile, Raven) shares gpt_neox's tokenizer and data; ChatRWKV's `User:`/`Bot:` turns end at a blank
    # line, not at eos, which pixiu's eos-based stopping would miss
    "rwkv": HUMAN_ASSISTANT_TEMPLATE,
    # T5 ships no template; its generation prompt `### Assistant: ` ends the encoder input, the answer is decoded
    **dict.fromkeys(("t5", "mt5"), HUMAN_ASSISTANT_TEMPLATE),
    **dict.fromkeys(("llama", "mistral", "mixtral"), LLAMA2_TEMPLATE),
    **dict.fromkeys(("gemma", "gemma2", "gemma3_text"), GEMMA_TEMPLATE),
}
"""Chat template by `model_type` for a tokenizer that has none; any other family gets ChatML."""


def fallback_template(model_type: str) -> str:
    """The chat template pixiu uses for a `model_type` base whose tokenizer has none (ChatML when not listed)."""
    return FALLBACK_TEMPLATES.get(model_type, DEFAULT_CHAT_TEMPLATE)


def linear_layer_names(model: torch.nn.Module) -> list[str]:
    """Sorted last names of `model`'s linear and Conv1D layers, the output head excluded."""
    output_embeddings = getattr(model, "get_output_embeddings", None)
    head = output_embeddings() if callable(output_embeddings) else None
    return sorted(
        {
            name.rpartition(".")[2]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear | Conv1D) and module is not head and name
        }
    )


def lora_targets(model: torch.nn.Module, requested: str | list[str]) -> list[str]:
    """The layer names LoRA adapts in `model`: `requested`, or the family's own for "auto".

    Args:
        model: The loaded base model (its `config.model_type` picks the family).
        requested: "auto", or explicit layer names (peft's `target_modules`).

    Returns:
        Layer names, each present in `model`.

    Raises:
        ConfigError: A requested name matches no linear layer of `model`; the message lists those that exist.
    """
    present = linear_layer_names(model)
    if requested == AUTO or requested == [AUTO]:
        model_type = getattr(getattr(model, "config", None), "model_type", "")
        return [name for name in LORA_TARGETS.get(model_type, present) if name in present]
    paths = [path for path, module in model.named_modules() if isinstance(module, torch.nn.Linear | Conv1D)]
    # peft matches a name against the end of each module path: `q_proj` or `self_attn.q_proj`
    missing = [name for name in requested if not any(p == name or p.endswith(f".{name}") for p in paths)]
    if missing:
        model_type = getattr(getattr(model, "config", None), "model_type", "?")
        msg = (
            f"lora.target_modules names {', '.join(missing)}, which this {model_type} base does not have; "
            f"its linear layers are: {', '.join(present)}. Set lora.target_modules=auto, or pick from those."
        )
        raise ConfigError([msg])
    return list(requested)
