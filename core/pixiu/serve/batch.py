"""The sequences decoding together: one left-padded KV cache, its attention mask, and each row's own state.

Every sequence is prefilled alone, then joins the batch: caches are right-aligned, shorter ones padded on
the left with zeros that the attention mask hides, and each row gets its own position ids, so a row
computes what it would compute alone (up to float rounding). Copies happen only when rows join or leave;
after a leave, columns that are padding in every row are dropped, so the cache is only as wide as its
longest sequence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from pixiu.serve import kv

if TYPE_CHECKING:
    from pixiu.serve.request import EngineRequest


@dataclass(eq=False)
class Row:
    """One sequence in the batch: its request, tokens in its cache, and the sampled token not yet fed back."""

    request: EngineRequest
    length: int
    token: int


class Batch:
    """Rows decoding in lockstep over one shared, left-padded KV cache."""

    def __init__(self, device: torch.device | None = None):
        self.device = device or torch.device("cpu")
        """Where the model runs: every tensor the batch makes goes there."""
        self.rows: list[Row] = []
        self.cache: kv.Cache | None = None
        self.mask: torch.Tensor | None = None  # (rows, cache width), 1 where a real token is cached

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        """Columns of the shared cache."""
        return 0 if self.mask is None else self.mask.shape[1]

    def add(self, rows: list[Row], caches: list[kv.Cache]) -> None:
        """Insert rows whose prompts were prefilled alone into `caches` (one sequence each), keeping the rows
        sorted by adapter slot (base rows first), so that each run of rows multiplies through its own adapters
        only (`pixiu.serve.multi_lora`); rows of one slot stay in the order they came."""
        joining = sorted(
            zip(rows, caches, strict=True), key=lambda pair: _slot_order(pair[0])
        )  # stable: arrival order within a slot
        pieces: list[tuple[list[Row], kv.Cache, torch.Tensor]] = []
        taken = 0
        for row, cache in [*joining, (None, None)]:
            end = len(self.rows) if row is None else taken
            while end < len(self.rows) and _slot_order(self.rows[end]) <= _slot_order(row):
                end += 1
            if end > taken:  # a run of the batch's own rows, as views of its cache
                assert self.cache is not None and self.mask is not None, "a batch with rows has a cache and a mask"
                run = kv.row_range(self.cache, taken, end)
                pieces.append((self.rows[taken:end], run, self.mask[taken:end]))
                taken = end
            if row is not None and cache is not None:
                pieces.append(([row], cache, torch.ones(1, row.length, dtype=torch.long, device=self.device)))
        width = max(mask.shape[1] for _, _, mask in pieces)
        self.cache = kv.merge_left_padded([cache for _, cache, _ in pieces], width)
        self.mask = torch.cat([F.pad(mask, (width - mask.shape[1], 0)) for _, _, mask in pieces])
        self.rows = [row for piece_rows, _, _ in pieces for row in piece_rows]

    def step_inputs(self) -> dict[str, torch.Tensor]:
        """Model inputs (besides the cache, `self.cache`) that feed every row its pending token; the mask grows."""
        assert self.mask is not None, "step_inputs needs rows in the batch"
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return {
            "input_ids": torch.tensor([[row.token] for row in self.rows], device=self.device),
            "attention_mask": self.mask,
            "position_ids": torch.tensor([[row.length] for row in self.rows], device=self.device),
        }

    def keep(self, indices: list[int]) -> None:
        """Keep only the rows at `indices` and drop cache columns that are padding in all of them."""
        if len(indices) == len(self.rows):
            return
        if not indices:
            self.rows, self.cache, self.mask = [], None, None
            return
        assert self.mask is not None and self.cache is not None, "a batch with rows has a mask and a cache"
        index = torch.tensor(indices, device=self.device)
        mask = self.mask[index]
        start = int(mask.any(dim=0).nonzero()[0])
        self.cache = kv.select(self.cache, index, start)
        self.mask = mask[:, start:]
        self.rows = [self.rows[i] for i in indices]


def _slot_order(row: Row | None) -> float:
    """Where a row goes in the batch: by its adapter slot, base rows (no slot) first; None (the end) last."""
    if row is None:
        return math.inf
    return -1 if row.request.slot is None else row.request.slot
