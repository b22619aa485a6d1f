"""The sequences decoding together: one left-padded KV cache, its attention mask, and each row's own state.

Every sequence is prefilled alone, then joins the batch: caches are right-aligned, shorter ones padded on
the left with zeros that the attention mask hides, and each row gets its own position ids, so a row
computes what it would compute alone (up to float rounding). Copies happen only when rows join or leave;
after a leave, columns that are padding in every row are dropped, so the cache is only as wide as its
longest sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from pixiu.errors import PixiuError

if TYPE_CHECKING:
    from pixiu.serve.engine import Request


@dataclass(eq=False)
class Row:
    """One sequence in the batch: its request, tokens in its cache, and the sampled token not yet fed back."""

    request: Request
    length: int
    token: int


def new_cache(config) -> DynamicCache:
    """An empty cache for one sequence; refuses models whose cache is not plain full attention."""
    cache = DynamicCache(config=config)
    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        kinds = sorted({type(layer).__name__ for layer in cache.layers})
        raise PixiuError(f"pixiu serve supports full-attention models only; this model's cache uses {', '.join(kinds)}")
    return cache


class Batch:
    """Rows decoding in lockstep over one shared, left-padded KV cache."""

    def __init__(self, config):
        self.config = config
        self.rows: list[Row] = []
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, cache width), 1 where a real token is cached

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        """Columns of the shared cache."""
        return 0 if self.mask is None else self.mask.shape[1]

    def add(self, rows: list[Row], caches: list[DynamicCache]) -> None:
        """Append rows whose prompts were prefilled alone into `caches` (one sequence each)."""
        masks = [torch.ones(1, row.length, dtype=torch.long) for row in rows]
        if self.cache is not None:
            caches, masks = [self.cache, *caches], [self.mask, *masks]
        width = max(mask.shape[1] for mask in masks)
        layers = []
        for index in range(len(caches[0].layers)):
            keys = torch.cat([_pad_left(c.layers[index].keys, width) for c in caches])
            values = torch.cat([_pad_left(c.layers[index].values, width) for c in caches])
            layers.append((keys, values))
        self.cache = DynamicCache(ddp_cache_data=layers, config=self.config)
        self.mask = torch.cat([F.pad(mask, (width - mask.shape[1], 0)) for mask in masks])
        self.rows.extend(rows)

    def step_inputs(self) -> dict[str, torch.Tensor | DynamicCache]:
        """Model inputs that feed every row its pending token; the mask grows by one column."""
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return {
            "input_ids": torch.tensor([[row.token] for row in self.rows]),
            "attention_mask": self.mask,
            "position_ids": torch.tensor([[row.length] for row in self.rows]),
            "past_key_values": self.cache,
        }

    def keep(self, indices: list[int]) -> None:
        """Keep only the rows at `indices` and drop cache columns that are padding in all of them."""
        if len(indices) == len(self.rows):
            return
        if not indices:
            self.rows, self.cache, self.mask = [], None, None
            return
        index = torch.tensor(indices)
        mask = self.mask[index]
        start = int(mask.any(dim=0).nonzero()[0])
        layers = [(layer.keys[index, :, start:], layer.values[index, :, start:]) for layer in self.cache.layers]
        self.cache = DynamicCache(ddp_cache_data=layers, config=self.config)
        self.mask = mask[:, start:]
        self.rows = [self.rows[i] for i in indices]


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad a (batch, heads, length, dim) cache tensor on the left of its length axis up to `width`."""
    return F.pad(tensor, (0, 0, width - tensor.shape[2], 0))
