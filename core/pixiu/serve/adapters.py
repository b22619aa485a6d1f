"""The adapter table: served names to slots of a `MultiLora`, who holds each slot, and which to evict.

A name maps to one slot. Each request holds its slot from submission to its end (a reference count), so
replacing, unloading or evicting a name only retires its slot: new requests stop reaching it, running ones
finish on it, and the slot is freed, to be reused by the next load, once its last request has ended.
With `max_adapters` set, loading a new name beyond the cap evicts the least recently used name, an idle
one if there is any. An evicted name answers 404 until it is loaded again (no reload on demand: loading
reads files and may fail, which a chat request should not wait for or trip on).

A reward model (`pixiu.reward_model`: a LoRA adapter plus a scalar head) takes a slot like any adapter; its
head sits beside the slot, is loaded with it and is freed with it.

An adapter that per-row serving cannot take (DoRA, IA3, AdaLoRA, prefix and prompt tuning) is served one at a time
through peft (`pixiu.serve.single_adapter`): it takes no `MultiLora` slot but a key of its own, a negative number
(no slot has one), and is held, retired and evicted the same way.

Slots change only on the engine thread (`install`, `free_retired`, `detach`), between forward passes;
the lookups (`acquire`, `release`, `retire`, `loaded`) may come from any thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from pixiu.errors import PixiuError
from pixiu.serve.multi_lora import AdapterWeights, MultiLora
from pixiu.serve.single_adapter import SingleAdapter

BASE = "base"
"""The model name that means the plain base model, without any adapter."""

log = logging.getLogger("pixiu.serve")


class UnknownModel(PixiuError):
    """A request or unload named a model that is not loaded."""


class WrongKind(PixiuError):
    """A request named a reward model to generate with, or a chat model to score with."""


def generation_refusal(name: str) -> str:
    """Why a chat or text completion cannot name the reward model `name`."""
    return f"{name} is a reward model: it scores answers at POST /v1/score; it does not generate"


def scoring_refusal(name: str) -> str:
    """Why `POST /v1/score` cannot name the chat adapter (or the base) `name`."""
    what = "the plain base model" if name == BASE else "a chat adapter"
    return (
        f"{name} is {what}: it generates at POST /v1/chat/completions and has no reward head to score with; "
        "name a reward model (one marked kind: reward_model in GET /v1/models)"
    )


@dataclass(frozen=True)
class AdapterInfo:
    """A loaded adapter."""

    name: str
    """The name it is served under (the `model` of a request)."""
    folder: Path
    domain: str | None
    """The domain it was trained for, from the registry or its `pixiu_run.yaml`; None when unknown."""
    rank: int
    nbytes: int
    load_ms: float
    reward_max_len: int | None = None
    """For a reward model, the tokens prompt plus answer are cut to when scoring (its training `max_seq_len`);
    None for a chat adapter."""
    single: SingleAdapter | None = None
    """For an adapter served one at a time through peft, its peft layers; None for one served per row."""

    @property
    def reward_model(self) -> bool:
        """Whether this adapter scores answers (it has a reward head) rather than generating."""
        return self.reward_max_len is not None

    @property
    def served(self) -> Literal["per_row", "single"]:
        """How it is served: "per_row" in the mixed batch, or "single" (one adapter per forward pass, via peft)."""
        return "per_row" if self.single is None else "single"


class AdapterTable:
    """Served adapter names, their slots in a `MultiLora` over `model`, and the requests holding each slot."""

    def __init__(self, model: torch.nn.Module, max_adapters: int | None = None):
        if max_adapters is not None and max_adapters < 1:
            raise PixiuError(f"max_adapters is {max_adapters}; give at least 1, or None for no cap")
        self.lora = MultiLora(model)
        self.max_adapters = max_adapters
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[int, AdapterInfo]] = {}  # in load order
        self._last_used: dict[str, int] = {}  # name -> tick of its latest load or request
        self._ticks = itertools.count()
        self._users: dict[int, int] = {}  # slot -> requests holding it
        self._retired: dict[int, list[Future]] = {}  # slots no name reaches, freed once their users are gone
        self._evicted: set[str] = set()
        self._heads: dict[int, torch.nn.Linear] = {}  # slot -> the reward head of the reward model in it
        self._single_keys = itertools.count(-2, -1)  # keys of single adapters: below the base's -1 in batch order

    def loaded(self) -> dict[str, AdapterInfo]:
        """Served adapters by name, in load order."""
        with self._lock:
            return {name: info for name, (_, info) in self._loaded.items()}

    def missing(self, name: str) -> str:
        """Why `name` is not served and what to do, for a 404's message."""
        with self._lock:
            return self._missing(name)

    def acquire(self, name: str) -> tuple[int, AdapterInfo]:
        """The slot and version `name` routes to now, held for one request until `release`; or `UnknownModel`."""
        with self._lock:
            if name not in self._loaded:
                raise UnknownModel(self._missing(name))
            slot, info = self._loaded[name]
            self._users[slot] = self._users.get(slot, 0) + 1
            self._last_used[name] = next(self._ticks)
            return slot, info

    def release(self, slot: int) -> None:
        """A request holding `slot` has ended."""
        with self._lock:
            self._users[slot] -= 1

    def retire(self, name: str) -> Future:
        """Stop routing to `name`; the future resolves once its slot has no requests left and is freed."""
        future: Future = Future()
        with self._lock:
            if name not in self._loaded:
                loaded = ", ".join(self._loaded) or "none"
                raise UnknownModel(f"no adapter {name!r} is loaded; loaded: {loaded}")
            self._retire(name, future)
        return future

    def heads(self) -> dict[int, torch.nn.Linear]:
        """The reward heads loaded, by slot."""
        with self._lock:
            return dict(self._heads)

    def install(
        self,
        name: str,
        weights: AdapterWeights | SingleAdapter,
        domain: str | None,
        load_ms: float,
        reward: tuple[torch.nn.Linear, int] | None = None,
    ) -> AdapterInfo:
        """Serve `weights` as `name` (replacing a version of that name), evicting past the cap; engine thread only.

        `weights` are a LoRA adapter's, copied into a slot, or a `SingleAdapter`, served through peft under a key.
        `reward` makes it a reward model: its head and the `max_len` it was trained with.
        """
        if name == BASE:
            raise PixiuError(f"{BASE!r} names the plain base model; give the adapter another name")
        with self._lock:
            cap = self.max_adapters
            if cap is not None and name not in self._loaded and len(self._loaded) >= cap:
                victim = min(
                    self._loaded, key=lambda n: (bool(self._users.get(self._loaded[n][0])), self._last_used[n])
                )
                log.warning(
                    "evicting adapter %r (least recently used) to serve %r within max_adapters=%d", victim, name, cap
                )
                self._retire(victim, None)
                self._evicted.add(victim)
        self.free_retired()  # an idle victim's slot is reused right away
        head, max_len = reward if reward is not None else (None, None)
        if isinstance(weights, SingleAdapter):
            slot = next(self._single_keys)
            info = AdapterInfo(name, weights.folder, domain, weights.rank, weights.nbytes, load_ms, None, weights)
        else:
            slot = self.lora.add(weights)
            info = AdapterInfo(name, weights.folder, domain, weights.rank, self.lora.bytes_per_slot, load_ms, max_len)
        with self._lock:
            if head is not None:
                self._heads[slot] = head
            if name in self._loaded:
                self._retire(name, None)
            self._loaded[name] = (slot, info)
            self._last_used[name] = next(self._ticks)
            self._evicted.discard(name)
        self.free_retired()
        return info

    @property
    def retiring(self) -> bool:
        """Whether retired slots wait to be freed."""
        with self._lock:
            return bool(self._retired)

    @property
    def freeable(self) -> bool:
        """Whether a retired slot has no requests left and can be freed now."""
        with self._lock:
            return any(not self._users.get(slot) for slot in self._retired)

    def free_retired(self) -> None:
        """Free retired slots that no request holds and resolve their futures; engine thread only."""
        with self._lock:
            done = [slot for slot in self._retired if not self._users.get(slot)]
            futures = [future for slot in done for future in self._retired.pop(slot)]
            for slot in done:
                self._heads.pop(slot, None)
        for slot in done:
            if slot >= 0:  # a single adapter's key holds no slot: dropping it frees its peft layers
                self.lora.remove(slot)
        for future in futures:
            future.set_result(None)

    def detach(self) -> None:
        """Drop every adapter and remove the hooks from the base model; engine thread only (or once stopped)."""
        with self._lock:
            self._loaded.clear()
            self._last_used.clear()
            futures = [future for waiting in self._retired.values() for future in waiting]
            self._retired.clear()
            self._heads.clear()
        self.lora.detach()
        for future in futures:
            future.set_result(None)

    @property
    def allocated_bytes(self) -> int:
        """Memory of every slot, used or free."""
        return self.lora.capacity * self.lora.bytes_per_slot

    def _missing(self, name: str) -> str:
        """`missing`, for a caller that holds the lock."""
        message = f"the model {name!r} does not exist; loaded models: {', '.join([BASE, *self._loaded])}"
        if name in self._evicted:
            message += (
                f". {name!r} was evicted as the least recently used of max_adapters={self.max_adapters}; "
                f"load it again (POST /v1/adapters) or start the server with a larger --max-adapters"
            )
        return message

    def _retire(self, name: str, future: Future | None) -> None:
        """Move `name`'s slot to the retired ones (the caller holds the lock)."""
        slot, _ = self._loaded.pop(name)
        del self._last_used[name]
        waiting = self._retired.setdefault(slot, [])
        if future is not None:
            waiting.append(future)
