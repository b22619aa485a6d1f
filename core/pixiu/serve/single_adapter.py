"""Adapters served one at a time through peft, on the engine's one shared base model: DoRA, IA3 and AdaLoRA
(peft's own layers), prefix and prompt tuning (peft's virtual tokens), and a LoRA that also trains embedding rows
(`trainable_token_indices`, which rows sharing one embedding table cannot route).

The per-row engine (`pixiu.serve.multi_lora`) serves the LoRA family only: DoRA rescales each weight column by a
norm of the updated weight, IA3 multiplies activations, AdaLoRA's update is an SVD triplet, and prefix or prompt
tuning adds virtual tokens; none is a low-rank term added per row. Such an adapter is served by peft's own code
instead, for one group of rows at a time: every row of a forward pass goes through the same adapter.

Loading runs `PeftModel.from_pretrained` on the shared base (which puts peft's layers in place of the original
ones, each peft layer keeping the original as its `base_layer`), takes note of what peft put where, and puts the
originals back, so the base stays as it was between forward passes: the per-row hooks, reward scoring, `close()`
and every other adapter see the plain base. `SingleAdapter.active` swaps peft's layers in for one forward pass
and back (a few hundred dictionary assignments: 37 us in and out for DoRA on SmolLM2-135M's 210 layers). The peft
layers wrap the very same original modules, so nothing of the base is copied. For prefix tuning the prefix
keys/values (in peft's `get_prompt` layout) seed the request's cache at prefill, for prompt tuning the virtual token
embeddings go in front of the first prompt chunk as `inputs_embeds`; both then count as cached tokens of the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import DynamicCache

from pixiu.errors import PixiuError


@dataclass(eq=False)
class SingleAdapter:
    """A peft adapter kept beside the base model, applied by `active` to the forward passes of its own group."""

    folder: Path
    rank: int
    """Its rank (`r`, AdaLoRA's `init_r`), 0 for IA3 and the virtual-token methods."""
    swaps: list[tuple[torch.nn.Module, str, torch.nn.Module, torch.nn.Module]] = field(default_factory=list)
    """(parent, attribute, the original module, peft's module in its place) for every module peft replaced."""
    prefix: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    """Prefix tuning: each layer's virtual keys and values, (1, heads, virtual tokens, head dim)."""
    prompt: torch.Tensor | None = None
    """Prompt tuning: the virtual token embeddings, (1, virtual tokens, hidden size)."""
    nbytes: int = 0
    """Bytes of the adapter's own weights."""

    @property
    def virtual_tokens(self) -> int:
        """Cache entries a request of this adapter has before its first prompt token."""
        if self.prefix is not None:
            return self.prefix[0][0].shape[2]
        return 0 if self.prompt is None else self.prompt.shape[1]

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the block, the base model computes through this adapter's peft layers."""
        # straight into `_modules`, where nn.Module keeps its children: setattr's checks cost ~10x more, per module
        for parent, attribute, _, replacement in self.swaps:
            parent._modules[attribute] = replacement
        try:
            yield
        finally:
            for parent, attribute, original, _ in self.swaps:
                parent._modules[attribute] = original

    def seed_cache(self, cache: DynamicCache | list[torch.Tensor]) -> None:
        """Put the prefix's keys and values into a request's empty cache (prefix tuning; nothing otherwise)."""
        if not self.prefix:
            return
        if not isinstance(cache, DynamicCache):  # training refuses prefix tuning on such bases
            raise PixiuError("a prefix adapter needs an attention cache; this base keeps a recurrent state instead")
        for index, (keys, values) in enumerate(self.prefix):
            cache.update(keys, values, index)

    def first_inputs(self, embeddings: torch.nn.Module, chunk: torch.Tensor) -> dict[str, torch.Tensor]:
        """The model inputs of a request's first prompt chunk (1, tokens): the virtual token embeddings before the
        chunk's for prompt tuning, the token ids otherwise."""
        if self.prompt is None:
            return {"input_ids": chunk}
        embedded = embeddings(chunk)
        return {"inputs_embeds": torch.cat([self.prompt.to(embedded.dtype), embedded], dim=1)}


def load_single(model: torch.nn.Module, folder: Path, method: str) -> SingleAdapter:
    """Read the peft adapter in `folder` (trained with `method`) for `model`, leaving `model` as it was; call it
    between forward passes (it rearranges `model`'s modules while it runs).

    Raises:
        PixiuError: peft cannot load the folder onto this base model.
    """
    from peft import PeftModel

    from pixiu.lora import _peft_quietly

    before = dict(model.named_modules())
    had_config = hasattr(model, "peft_config")
    trainable = {parameter: parameter.requires_grad for parameter in model.parameters()}  # peft freezes them
    try:
        with _peft_quietly():
            peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    except (ValueError, RuntimeError, KeyError) as error:
        _restore(model, before, had_config, trainable)
        msg = (
            f"adapter {folder} (lora.method={method}) does not load onto the served base model ({error}); serve it "
            "with the base it was trained on (see `pixiu adapters list`)"
        )
        raise PixiuError(msg) from error
    swaps = _restore(model, before, had_config, trainable)
    config = peft_model.active_peft_config
    adapter = SingleAdapter(Path(folder), int(getattr(config, "init_r", 0) or getattr(config, "r", 0) or 0), swaps)
    base_params = {id(p) for p in model.parameters()}
    new_params = {id(p): p for _, _, _, replacement in swaps for p in replacement.parameters()}
    if config.is_prompt_learning:
        for p in peft_model.prompt_encoder.parameters():
            new_params[id(p)] = p
        if config.peft_type.value == "PREFIX_TUNING":
            adapter.prefix = _prefix_layers(peft_model)
        else:
            with torch.inference_mode():
                adapter.prompt = peft_model.get_prompt(batch_size=1).detach()
    adapter.nbytes = sum(p.nbytes for key, p in new_params.items() if key not in base_params)
    return adapter


def _restore(
    model: torch.nn.Module,
    before: dict[str, torch.nn.Module],
    had_config: bool,
    trainable: dict[torch.nn.Parameter, bool],
) -> list[tuple[torch.nn.Module, str, torch.nn.Module, torch.nn.Module]]:
    """Put back every module of `before` that peft replaced in `model`, whether it had a `peft_config` and what its
    parameters' `requires_grad` were; return what was swapped."""
    swaps: list[tuple[torch.nn.Module, str, torch.nn.Module, torch.nn.Module]] = []
    replaced: list[str] = []
    now = dict(model.named_modules())
    for path, original in before.items():  # parents come before their children
        replacement = now.get(path)
        if not path or replacement is None or replacement is original:
            continue
        if any(path.startswith(outer + ".") for outer in replaced):
            continue  # inside a module peft replaced as a whole
        replaced.append(path)
        parent_path, _, attribute = path.rpartition(".")
        swaps.append((model.get_submodule(parent_path), attribute, original, replacement))
    for parent, attribute, original, _ in swaps:
        setattr(parent, attribute, original)
    if not had_config and hasattr(model, "peft_config"):
        del model.peft_config
    for parameter, requires_grad in trainable.items():
        parameter.requires_grad_(requires_grad)
    return swaps


def _prefix_layers(peft_model: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's (keys, values) of a loaded prefix adapter, every virtual token in every layer, in the layout of
    peft's `get_prompt`. Read from the prompt encoder rather than through `get_prompt`, whose cache for gemma2/gemma3
    keeps only the window's last tokens in sliding-window layers, where the engine keeps those layers whole (the
    model's mask applies the window)."""
    config = peft_model.active_peft_config
    weight = peft_model.prompt_encoder[peft_model.active_adapter].embedding.weight.detach()  # saved already projected
    weight = weight.to(getattr(peft_model, "base_model_torch_dtype", None) or weight.dtype)  # as get_prompt casts it
    heads = config.num_attention_heads
    stacked = weight.view(1, config.num_virtual_tokens, config.num_layers * 2, heads, config.token_dim // heads)
    layers = stacked.permute([2, 0, 3, 1, 4]).split(2)  # per layer: (keys and values, batch, heads, tokens, head dim)
    return [(layer[0], layer[1]) for layer in layers]
