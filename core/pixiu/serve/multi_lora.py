"""Many LoRA adapters over one base model, each batch row routed to its own adapter within one forward pass.

Why not peft's `adapter_names`: peft splits the batch by adapter inside every adapted layer, which on
SmolLM2-135M made a decode step mixing 8 adapters 2.5x slower than the base alone, and `load_adapter`
re-injects layers (0.3-0.8 s per adapter, growing with the number loaded). Here an adapter is only its
weights: every adapted `nn.Linear` keeps all adapters' A and B matrices stacked in numbered slots, and a
forward hook adds `(x @ A_sel^T * row_mask) @ B_sel` for the adapters present, over a few runs of consecutive
rows (each run through the slots its own rows use), so a step costs a few small matmuls per layer whatever
the mix. Loading copies tensors into a free slot (milliseconds). GPT-2's `Conv1D` layers (weight stored
transposed, which peft records as `fan_in_fan_out`) are adapted the same way: the low-rank update of x is the same.
Adapters are read exactly as peft saves them (adapter_config.json + adapter_model.safetensors); tests
check the outputs against peft itself.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch.utils.hooks import RemovableHandle
from transformers.pytorch_utils import Conv1D

from pixiu.errors import PixiuError

_PREFIX = "base_model.model."  # peft's prefix before the base model's own module path
_UNSUPPORTED = {  # adapter_config.json keys whose non-default values change the maths
    "use_dora": "DoRA",
    "rank_pattern": "per-module ranks (rank_pattern)",
    "alpha_pattern": "per-module alphas (alpha_pattern)",
    "lora_bias": "lora_bias",
    "modules_to_save": "modules_to_save",
    "trainable_token_indices": "trainable_token_indices",
    "layer_replication": "layer_replication",
}


@dataclass(frozen=True)
class AdapterWeights:
    """One LoRA adapter read from disk: for each adapted module path, A (r x in) and B^T times its scaling (r x out)."""

    folder: Path
    rank: int
    modules: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def nbytes(self) -> int:
        """Bytes of the adapter's own weights."""
        return sum(a.nbytes + b.nbytes for a, b in self.modules.values())


def adapter_files(folder: Path, reader: str) -> tuple[dict[str, Any], Path]:
    """A peft adapter folder's parsed adapter_config.json and its weights file; a PixiuError naming what `reader`
    (who needs them) misses when either is absent."""
    folder = Path(folder)
    config_file, weights_file = folder / "adapter_config.json", folder / "adapter_model.safetensors"
    if not config_file.is_file() or not weights_file.is_file():
        msg = f"{folder} is not a LoRA adapter folder: {reader} needs adapter_config.json and adapter_model.safetensors"
        raise PixiuError(msg)
    return json.loads(config_file.read_text(encoding="utf-8")), weights_file


def read_adapter(
    folder: Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> AdapterWeights:
    """Read a peft LoRA adapter folder into `dtype` on `device` (the base model's); raise a `PixiuError` for anything
    but plain LoRA on linear layers. The scaling is applied in float32, before the cast."""
    config, weights_file = adapter_files(folder, "it")
    if config.get("trainable_token_indices"):
        msg = (
            f"adapter {folder} also trains embedding rows (trainable_token_indices, the tokens `pixiu models "
            f"extend-vocab` added), which per-row serving cannot route: every row shares one embedding table. The "
            f"engine serves it through peft instead (pixiu.serve.single_adapter); or merge it into its base with "
            f"`pixiu adapters merge {folder} --output MERGED` and serve MERGED as --base"
        )
        raise PixiuError(msg)
    problems = [label for key, label in _UNSUPPORTED.items() if config.get(key)]
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type {config['peft_type']}")
    if config.get("bias", "none") != "none":
        problems.append(f"bias={config['bias']!r}")
    if problems:
        msg = f"adapter {folder} uses {', '.join(problems)}, which pixiu cannot serve; train a plain LoRA adapter"
        raise PixiuError(msg)
    state = load_file(str(weights_file))
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        path, _, kind = key.removeprefix(_PREFIX).rpartition(".lora_")
        if kind not in ("A.weight", "B.weight"):
            msg = f"adapter {folder} has weight {key!r}, which is not a LoRA A/B matrix; pixiu cannot serve it"
            raise PixiuError(msg)
        pairs.setdefault(path, {})[kind[0]] = tensor
    modules = {}
    for path, pair in pairs.items():
        if set(pair) != {"A", "B"} or pair["A"].ndim != 2 or pair["A"].shape[0] != pair["B"].shape[1]:
            raise PixiuError(f"adapter {folder} has an incomplete or malformed LoRA pair for {path}")
        rank = pair["A"].shape[0]
        alpha = config.get("lora_alpha", rank)
        scaling = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
        a, b = pair["A"].float(), pair["B"].float().T * scaling
        modules[path] = (a.to(device, dtype), b.to(device, dtype).contiguous())
    if not modules:
        raise PixiuError(f"adapter {folder} has no LoRA weights")
    return AdapterWeights(folder, max(a.shape[0] for a, _ in modules.values()), modules)


@dataclass(frozen=True)
class _Segment:
    """A run of consecutive batch rows, the adapter slots they use, and which rank columns belong to each row."""

    rows: slice
    slots: slice | torch.Tensor  # a range of slots, used as views of the stacks, or slots to copy out of them
    mask: torch.Tensor | None  # (rows, 1, columns): 1 where a column belongs to the row's adapter; None: all


class MultiLora:
    """Adapters stacked in slots over one base model; `route` sets each batch row's slot for one forward pass."""

    def __init__(self, model: torch.nn.Module, capacity: int = 4):
        self.model = model
        self.rank = 0
        self.capacity = capacity
        self._min_capacity = capacity
        self._free = list(range(capacity))
        self._ranks: dict[int, int] = {}  # slot in use -> its adapter's rank
        self._stacks: dict[str, list[torch.Tensor]] = {}  # module path -> [A (slots, rank, in), B (slots, rank, out)]
        self._route: list[_Segment] | None = None
        self._rows = 0  # batch rows of the routed forward pass
        self._handles: list[RemovableHandle] = []  # one forward hook per adapted linear layer
        self._dtype = next(model.parameters()).dtype
        self._device = next(model.parameters()).device

    @property
    def bytes_per_slot(self) -> int:
        """Memory one adapter slot takes (all adapted modules, at the current stacked rank)."""
        return sum(a[0].nbytes + b[0].nbytes for a, b in self._stacks.values())

    def add(self, weights: AdapterWeights) -> int:
        """Copy an adapter into a free slot (growing the stacks when needed) and return the slot number."""
        targets = {path: self._linear(path, weights.folder) for path in weights.modules}
        for path, (a, b) in weights.modules.items():
            fan_in, fan_out = _features(targets[path])
            if a.shape[1] != fan_in or b.shape[1] != fan_out:
                msg = (
                    f"adapter {weights.folder} does not fit this base model: {path} is "
                    f"{fan_in}->{fan_out}, the adapter expects {a.shape[1]}->{b.shape[1]}. "
                    f"Serve it with the base it was trained on (see `pixiu adapters list`)."
                )
                raise PixiuError(msg)
        if not self._free:
            self._grow(capacity=self.capacity * 2, rank=self.rank)
        if weights.rank > self.rank:
            self._grow(capacity=self.capacity, rank=weights.rank)
        for path, linear in targets.items():
            if path not in self._stacks:
                self._stacks[path] = self._zeros(linear)
                self._handles.append(linear.register_forward_hook(self._hook(path)))
        slot = min(self._free)  # the lowest, so that the upper slots empty and can be given back
        self._free.remove(slot)
        self._ranks[slot] = weights.rank
        for path, (stack_a, stack_b) in self._stacks.items():
            stack_a[slot].zero_()  # a reused slot must not keep the previous adapter's weights
            stack_b[slot].zero_()
            if path in weights.modules:
                a, b = weights.modules[path]
                stack_a[slot, : a.shape[0]] = a
                stack_b[slot, : b.shape[0]] = b
        return slot

    def remove(self, slot: int) -> None:
        """Free a slot (its weights are overwritten when the slot is reused), then give back unused memory."""
        if slot in self._free or not 0 <= slot < self.capacity:
            raise ValueError(f"slot {slot} is not in use")
        self._free.append(slot)
        del self._ranks[slot]
        self._shrink()

    def detach(self) -> None:
        """Remove every hook and drop every slot: the base model computes exactly what it did before."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._stacks.clear()
        self._free = list(range(self.capacity))
        self._ranks.clear()
        self.rank = 0

    @contextmanager
    def route(self, slots: Sequence[int | None]) -> Iterator[None]:
        """Within the block, forward passes give batch row i the adapter in `slots[i]` (None: the plain base)."""
        self._route, self._rows = self._segments(slots), len(slots)
        try:
            yield
        finally:
            self._route = None

    def _segments(self, slots: Sequence[int | None]) -> list[_Segment] | None:
        """Split the rows into about sqrt(adapters used) runs of consecutive rows, each multiplied through only
        the slots its own rows use.

        Every row multiplies through all the rank columns of its run's slots and a mask keeps its own, so the cost
        is arithmetic: rows x slots x rank per layer. Runs cut that when rows using the same adapters are next to
        each other (the engine keeps its batch sorted by slot); each run costs a few more calls per layer, so
        about sqrt(used) runs is the balance (measured on SmolLM2 with 8 adapters: 0.86 of the base's speed in one
        run, 0.92-0.94 in two or three).
        """
        used = sorted({s for s in slots if s is not None})
        if not used:
            return None
        runs = max(1, round(math.sqrt(len(used))))
        bounds = [round(i * len(slots) / runs) for i in range(runs + 1)]
        segments = []
        for start, end in itertools.pairwise(bounds):
            part = slots[start:end]
            present = sorted({s for s in part if s is not None})
            if not present:
                continue  # base rows only: nothing to add
            low, high = present[0], present[-1] + 1
            if len(present) == 1 and None not in part:
                segments.append(_Segment(slice(start, end), slice(low, high), None))
                continue
            # copying a few slots out of the stacks costs less than multiplying through many unused ones
            gather = len(present) * 2 < high - low
            columns = present if gather else list(range(low, high))
            owner = {slot: i for i, slot in enumerate(columns)}
            mask = torch.zeros(len(part), len(columns), dtype=self._dtype, device=self._device)
            for row, slot in enumerate(part):
                if slot is not None:
                    mask[row, owner[slot]] = 1
            chosen = torch.tensor(present, device=self._device) if gather else slice(low, high)
            segments.append(_Segment(slice(start, end), chosen, mask.repeat_interleave(self.rank, dim=1).unsqueeze(1)))
        return segments

    def _hook(self, path: str):
        """A forward hook for the linear layer at `path` that adds the routed adapters' low-rank update in place."""

        def add_lora(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> None:
            segments = self._route
            if segments is None:
                return
            stack_a, stack_b = self._stacks[path]
            # (rows, ..., features) even where a layer sees the batch flattened to tokens (an MoE's shared expert)
            inputs = args[0].view(self._rows, -1, args[0].shape[-1])
            outputs = output.view(self._rows, -1, output.shape[-1])
            for segment in segments:
                if isinstance(segment.slots, slice):
                    a, b = stack_a[segment.slots], stack_b[segment.slots]
                else:
                    a, b = stack_a.index_select(0, segment.slots), stack_b.index_select(0, segment.slots)
                hidden = inputs[segment.rows] @ a.flatten(0, -2).T  # (rows, tokens, columns)
                if segment.mask is not None:
                    hidden.mul_(segment.mask)  # zero the columns of other adapters, row by row
                out = outputs[segment.rows]
                out.view(-1, out.shape[-1]).addmm_(hidden.view(-1, hidden.shape[-1]), b.flatten(0, -2))

        return add_lora

    def _linear(self, path: str, folder: Path) -> torch.nn.Linear | Conv1D:
        """The base model's linear (or Conv1D) layer at `path`, or an error saying the adapter does not fit."""
        try:
            module = self.model.get_submodule(path)
        except AttributeError:
            module = None
        if not isinstance(module, torch.nn.Linear | Conv1D):
            msg = (
                f"adapter {folder} adapts {path}, which is not a linear layer of this base model; "
                f"serve it with the base it was trained on (see `pixiu adapters list`)"
            )
            raise PixiuError(msg)
        return module

    def _zeros(self, linear: torch.nn.Linear | Conv1D) -> list[torch.Tensor]:
        """Empty A and B stacks for one linear layer."""
        fan_in, fan_out = _features(linear)
        return [
            torch.zeros(self.capacity, self.rank, fan_in, dtype=self._dtype, device=self._device),
            torch.zeros(self.capacity, self.rank, fan_out, dtype=self._dtype, device=self._device),
        ]

    def _shrink(self) -> None:
        """Halve the slots while their upper half is free (down to the first capacity), and cut the stacked
        rank to the largest rank still loaded; the stacks are copied, so the old memory is released."""
        capacity, free = self.capacity, set(self._free)
        while capacity > self._min_capacity and free.issuperset(range(capacity // 2, capacity)):
            capacity //= 2
        rank = max(self._ranks.values(), default=0)
        if (capacity, rank) == (self.capacity, self.rank):
            return
        for stacks in self._stacks.values():
            for i, old in enumerate(stacks):
                stacks[i] = old[:capacity, :rank].clone()
        self._free = sorted(slot for slot in free if slot < capacity)
        self.capacity, self.rank = capacity, rank

    def _grow(self, *, capacity: int, rank: int) -> None:
        """Reallocate every stack with more slots or a larger rank, keeping the loaded weights."""
        for stacks in self._stacks.values():
            for i, old in enumerate(stacks):
                new = old.new_zeros(capacity, rank, old.shape[2])
                new[: old.shape[0], : old.shape[1]] = old
                stacks[i] = new
        self._free.extend(range(self.capacity, capacity))
        self.capacity, self.rank = capacity, rank


def _features(layer: torch.nn.Linear | Conv1D) -> tuple[int, int]:
    """(input, output) features of a linear layer; a Conv1D stores its weight transposed, as (input, output)."""
    if isinstance(layer, Conv1D):
        return layer.weight.shape[0], layer.weight.shape[1]
    return layer.in_features, layer.out_features
