"""The KV cache: the only module that touches transformers' cache internals.

Two kinds of cache: attention keys and values (a `DynamicCache`), and a recurrent base's state (RWKV: a list of
five (batch, hidden, layers) tensors, `pixiu.recurrent`). Every function here takes either; for a state, merging
rows is concatenation (no padding: the width and columns only concern attention) and the model carries a chunked
prefill on by updating the state in place.

pixiu serve keeps one `DynamicCache` per batch and rebuilds it when rows join or leave, reading each
layer's `keys` and `values` (a `DynamicLayer`; sliding-window layers are kept whole, see `new_cache`) and building
caches with `DynamicCache(ddp_cache_data=...)`;
the model takes it as `cache` (newer 5.x; `past_key_values`, deprecated there, in older ones).
That layout is transformers 5's; pyproject.toml pins `transformers>=5.0,<6` and `new_cache` refuses,
with what to install, any cache whose layout is not this one.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

from pixiu import recurrent
from pixiu.errors import PixiuError

SUPPORTED = "transformers>=5.0,<6"
"""The transformers versions whose cache layout this module is written for (tested with 5.x)."""


Cache = DynamicCache | list[torch.Tensor]
"""A cache of either kind: attention keys and values, or a recurrent state."""


def cache_argument(model: torch.nn.Module) -> str:
    """The name under which `model`'s forward takes the KV cache in this transformers version (`state` for RWKV)."""
    parameters = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values", "state"):
        if name in parameters:
            return name
    msg = (
        f"{type(model).__name__}.forward takes neither `cache` nor `past_key_values` in transformers "
        f"{transformers.__version__}; pixiu serve needs a causal LM with a KV cache, under {SUPPORTED}"
    )
    raise PixiuError(msg)


def new_cache(config, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Cache:
    """An empty cache for one sequence; refuses models whose cache is not plain or sliding-window attention, or the
    state of a recurrent base (`pixiu.recurrent.RECURRENT_TYPES`), made in `dtype` on `device`.

    Sliding-window layers are kept whole, as full layers: the model's own sliding-window mask still limits what
    each token attends to, so the outputs are the same; only a long answer's memory grows past the window.
    """
    if recurrent.is_recurrent(config):
        return recurrent.new_state(config, dtype, device)
    layers = getattr(DynamicCache(config=config), "layers", None)
    if not isinstance(layers, list):
        msg = (
            f"transformers {transformers.__version__} lays out DynamicCache differently from what pixiu serve "
            f"supports; install a supported version: pip install '{SUPPORTED}'"
        )
        raise PixiuError(msg)
    if any(type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers):
        kinds = sorted({type(layer).__name__ for layer in layers})
        msg = (
            f"pixiu serve supports full- and sliding-window-attention models only; this model's cache uses "
            f"{', '.join(kinds)} (model_type {getattr(config, 'model_type', '?')!r}). Its adapters train and "
            f"evaluate with pixiu; try serving them with `pixiu serve --engine vllm`"
        )
        raise PixiuError(msg)
    return DynamicCache()  # full layers, made as the model fills them


def merge_left_padded(caches: list[Cache], width: int) -> Cache:
    """One cache holding the rows of `caches` in order, each right-aligned and zero-padded on the left to `width`."""
    states = [cache for cache in caches if isinstance(cache, list)]
    if states:  # a batch holds one kind
        return recurrent.merge_states(states)
    attention = [cache for cache in caches if isinstance(cache, DynamicCache)]
    per_cache: list[list[Any]] = [list(cache.layers) for cache in attention]  # full-attention layers (checked above)
    layers = []
    for index in range(len(per_cache[0])):
        keys = torch.cat([_pad_left(cache_layers[index].keys, width) for cache_layers in per_cache])
        values = torch.cat([_pad_left(cache_layers[index].values, width) for cache_layers in per_cache])
        layers.append((keys, values))
    return DynamicCache(ddp_cache_data=layers)


def row_range(cache: Cache, start: int, end: int) -> Cache:
    """A cache of rows `start`..`end` of `cache`, as views (no copy)."""
    if isinstance(cache, list):
        return recurrent.select_rows(cache, slice(start, end))
    full: list[Any] = list(cache.layers)  # full-attention layers (checked when the cache was made)
    return DynamicCache(ddp_cache_data=[(layer.keys[start:end], layer.values[start:end]) for layer in full])


def select(cache: Cache, rows: torch.Tensor, start: int) -> Cache:
    """A cache with only `rows` of `cache`, and only its columns from `start` on (a state has no columns)."""
    if isinstance(cache, list):
        return recurrent.select_rows(cache, rows)
    full: list[Any] = list(cache.layers)  # full-attention layers (checked when the cache was made)
    layers = [(layer.keys[rows, :, start:], layer.values[rows, :, start:]) for layer in full]
    return DynamicCache(ddp_cache_data=layers)


def merge_encoder_decoder(caches: list[EncoderDecoderCache], width: int, encoded_width: int) -> EncoderDecoderCache:
    """One encoder-decoder cache of the rows of `caches` in order: their decoder self-attention right-aligned and
    zero-padded on the left to `width`, their cross-attention (the encoder's keys and values) zero-padded on the
    right to `encoded_width`; the caller masks both paddings."""
    decoder = merge_left_padded([cache.self_attention_cache for cache in caches], width)
    per_cache: list[list[Any]] = [list(cache.cross_attention_cache.layers) for cache in caches]
    layers = []
    for index in range(len(per_cache[0])):
        keys = torch.cat([_pad_right(cache_layers[index].keys, encoded_width) for cache_layers in per_cache])
        values = torch.cat([_pad_right(cache_layers[index].values, encoded_width) for cache_layers in per_cache])
        layers.append((keys, values))
    return EncoderDecoderCache(decoder, DynamicCache(ddp_cache_data=layers))


def encoder_decoder_row(cache: EncoderDecoderCache, row: int, start: int, encoded_length: int) -> EncoderDecoderCache:
    """Row `row` of a merged encoder-decoder cache as its own cache (views, no copy): its decoder columns from
    `start` on, its first `encoded_length` encoder columns."""
    decoder: list[Any] = list(cache.self_attention_cache.layers)
    cross: list[Any] = list(cache.cross_attention_cache.layers)
    return EncoderDecoderCache(
        DynamicCache(
            ddp_cache_data=[(x.keys[row : row + 1, :, start:], x.values[row : row + 1, :, start:]) for x in decoder]
        ),
        DynamicCache(
            ddp_cache_data=[
                (x.keys[row : row + 1, :, :encoded_length], x.values[row : row + 1, :, :encoded_length]) for x in cross
            ]
        ),
    )


def _pad_right(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad a (batch, heads, length, dim) cache tensor on the right of its length axis up to `width`."""
    return F.pad(tensor, (0, 0, 0, width - tensor.shape[2]))


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad a (batch, heads, length, dim) cache tensor on the left of its length axis up to `width`."""
    return F.pad(tensor, (0, 0, width - tensor.shape[2], 0))
