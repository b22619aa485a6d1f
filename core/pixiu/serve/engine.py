"""The scheduler: one thread owns the model and advances every active request by one token per forward pass.

Continuous batching: between two decode steps the thread runs queued adapter loads, prefills newly
admitted requests one by one and adds them to the batch, drops finished or cancelled ones, and frees
unloaded adapters once no request uses them. Rows of one step may use different adapters (see
`pixiu.serve.lora`). Requests hand results back through a sink callback called on the engine thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pixiu.errors import PixiuError
from pixiu.serve.batch import Batch, Row, new_cache
from pixiu.serve.lora import MultiLora, read_adapter

BASE = "base"
"""The model name that means the plain base model, without any adapter."""

log = logging.getLogger("pixiu.serve")

Sink = Callable[[int | None, str | None], None]
"""Receives `(token_id, None)` for each generated token, then `(None, finish_reason)` exactly once.

Finish reasons: "stop" (an end-of-turn token), "length" (max_tokens), "cancelled", "error".
Called on the engine thread, so it must be quick and must not raise.
"""


class UnknownModel(PixiuError):
    """A request or unload named a model that is not loaded."""


class QueueFull(PixiuError):
    """The waiting queue is at its limit; the client should retry later."""


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen for one request."""

    max_tokens: int
    temperature: float = 0.0
    """0 picks the most likely token (greedy); higher values sample more freely."""
    top_p: float = 1.0
    seed: int | None = None


@dataclass(eq=False)
class Request:
    """One generation request as the engine tracks it."""

    model: str
    prompt_ids: list[int]
    sampling: Sampling
    sink: Sink
    slot: int | None = None
    keep_logits: bool = False
    """Record each step's logits in `logits` (tests compare them with single-adapter runs)."""
    logits: list[torch.Tensor] = field(default_factory=list)
    generated: int = 0
    cancelled: bool = False
    finished: bool = False
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class AdapterInfo:
    """A loaded adapter."""

    name: str
    folder: Path
    rank: int
    nbytes: int
    load_ms: float


class Engine:
    """Serves the base model and named LoRA adapters from one background thread."""

    def __init__(
        self,
        model: torch.nn.Module,
        stop_ids: list[int],
        *,
        max_batch: int = 32,
        max_waiting: int = 256,
    ):
        self.model = model.eval()
        self.stop_ids = set(stop_ids)
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self.loras = MultiLora(model)
        new_cache(model.config)  # fail now, not at the first request, for unsupported caches
        self._batch = Batch(model.config)
        self._waiting: deque[Request] = deque()
        self._commands: list[tuple[Callable[[], object], Future]] = []
        self._adapters: dict[str, tuple[int, AdapterInfo]] = {}
        self._users: dict[int, int] = {}  # slot -> requests holding it
        self._retired: dict[int, list[Future]] = {}  # unloaded slots waiting for their requests to finish
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.counters = {"requests": {}, "prompt_tokens": 0, "generated_tokens": 0, "rejected": 0}
        self._recent: deque[tuple[float, int]] = deque()  # (time, tokens) per step over the last few seconds

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Engine:
        """Start the engine thread; returns self."""
        self._thread = threading.Thread(target=self._loop, name="pixiu-engine", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Cancel whatever is running or waiting and stop the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread:
            self._thread.join()
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the engine thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ---- adapters --------------------------------------------------------------------------------

    def load_adapter(self, name: str, folder: Path) -> AdapterInfo:
        """Load (or replace) adapter `name`; requests already running on an older version finish on it."""
        if name == BASE:
            raise PixiuError(f"{BASE!r} names the plain base model; give the adapter another name")
        started = time.perf_counter()
        weights = read_adapter(Path(folder), dtype=next(self.model.parameters()).dtype)

        def install() -> AdapterInfo:
            slot = self.loras.add(weights)
            info = AdapterInfo(name, Path(folder), weights.rank, self.loras.bytes_per_slot,
                               1000 * (time.perf_counter() - started))
            with self._cond:
                old = self._adapters.get(name)
                self._adapters[name] = (slot, info)
                if old:
                    self._retired[old[0]] = []
            return info

        return self._on_engine_thread(install)

    def unload_adapter(self, name: str) -> Future:
        """Stop routing new requests to `name`; the future resolves once its running requests have finished."""
        future: Future = Future()
        with self._cond:
            if name not in self._adapters:
                raise UnknownModel(f"no adapter {name!r} is loaded; loaded: {', '.join(self._adapters) or 'none'}")
            slot, _ = self._adapters.pop(name)
            self._retired.setdefault(slot, []).append(future)
            self._cond.notify()
        if not self.running:
            self._release_retired()
        return future

    def adapters(self) -> dict[str, AdapterInfo]:
        """Loaded adapters by name."""
        with self._cond:
            return {name: info for name, (_, info) in self._adapters.items()}

    # ---- requests --------------------------------------------------------------------------------

    def submit(self, model: str, prompt_ids: list[int], sampling: Sampling, sink: Sink, *,
               keep_logits: bool = False) -> Request:
        """Queue a request for `model` (an adapter name or `BASE`); raises `UnknownModel` or `QueueFull`."""
        if not prompt_ids:
            raise ValueError("a request needs at least one prompt token")
        request = Request(model, list(prompt_ids), sampling, sink, keep_logits=keep_logits)
        if sampling.temperature > 0:
            request.generator = torch.Generator()
            if sampling.seed is None:
                request.generator.seed()
            else:
                request.generator.manual_seed(sampling.seed)
        with self._cond:
            if model != BASE:
                if model not in self._adapters:
                    loaded = ", ".join([BASE, *self._adapters])
                    raise UnknownModel(f"the model {model!r} does not exist; loaded models: {loaded}")
                request.slot = self._adapters[model][0]
            if len(self._waiting) >= self.max_waiting:
                self.counters["rejected"] += 1
                raise QueueFull(f"the server is busy: {len(self._waiting)} requests are waiting; retry shortly")
            if request.slot is not None:
                self._users[request.slot] = self._users.get(request.slot, 0) + 1
            self.counters["prompt_tokens"] += len(prompt_ids)
            self._waiting.append(request)
            self._cond.notify()
        return request

    def cancel(self, request: Request) -> None:
        """Stop a request (a client went away); it leaves the batch before the next step."""
        with self._cond:
            request.cancelled = True
            if request in self._waiting:
                self._waiting.remove(request)
                waiting = True
            else:
                waiting = False
        if waiting:
            self._finish(request, "cancelled")

    def stats(self) -> dict[str, object]:
        """Queue depth, active sequences, loaded adapters, counters, and tokens per second lately."""
        now = time.monotonic()
        with self._cond:
            recent = [(t, n) for t, n in self._recent if now - t <= 10]
            return {
                "waiting": len(self._waiting),
                "active": len(self._batch),
                "adapters": len(self._adapters),
                "adapter_bytes": self.loras.capacity * self.loras.bytes_per_slot,
                "tokens_per_second": sum(n for _, n in recent) / 10,
                **{k: (dict(v) if isinstance(v, dict) else v) for k, v in self.counters.items()},
            }

    # ---- the engine thread -----------------------------------------------------------------------

    def _on_engine_thread(self, function: Callable[[], object]):
        """Run `function` between two steps on the engine thread (directly when it is not running)."""
        if not self.running:
            return function()
        future: Future = Future()
        with self._cond:
            self._commands.append((function, future))
            self._cond.notify()
        return future.result()

    def _loop(self) -> None:
        """Wait for work, then run one step; until stopped."""
        while True:
            with self._cond:
                while not (self._stopping or self._commands or self._waiting or self._batch.rows or self._retired):
                    self._cond.wait()
                if self._stopping:
                    break
                commands, self._commands = self._commands, []
                free = self.max_batch - len(self._batch)
                admitted = [self._waiting.popleft() for _ in range(min(free, len(self._waiting)))]
            self._step(commands, admitted)
            del commands, admitted  # hold no finished request while waiting for work
        self._shutdown()

    def _step(self, commands: list[tuple[Callable[[], object], Future]], admitted: list[Request]) -> None:
        """Run queued commands, admit new requests, decode one token for the batch, free unloaded adapters."""
        for function, future in commands:
            try:
                future.set_result(function())
            except Exception as exc:  # the caller gets the error; the engine goes on
                future.set_exception(exc)
        generated = self.counters["generated_tokens"]
        try:
            self._admit(admitted)
            if self._batch.rows:
                self._decode()
        except Exception:  # a failed step must fail its requests, not the server
            log.exception("decoding step failed; its requests end with finish_reason 'error'")
            for request in [*admitted, *(row.request for row in self._batch.rows)]:
                self._finish(request, "error")
            self._batch = Batch(self.model.config)
        self._release_retired()
        self._count_rate(self.counters["generated_tokens"] - generated)

    @torch.inference_mode()
    def _admit(self, requests: list[Request]) -> None:
        """Prefill each new request alone, emit its first token, and add the ones still going to the batch."""
        rows, caches = [], []
        for request in requests:
            if request.cancelled:
                self._finish(request, "cancelled")
                continue
            cache = new_cache(self.model.config)
            try:
                with self.loras.route([request.slot]):
                    output = self.model(input_ids=torch.tensor([request.prompt_ids]), past_key_values=cache,
                                        use_cache=True, logits_to_keep=1)
            except Exception:  # one bad prompt fails alone, not the batch
                log.exception("prefill failed; the request ends with finish_reason 'error'")
                self._finish(request, "error")
                continue
            token = self._next_token(request, output.logits[0, -1])
            if self._emit(request, token):
                rows.append(Row(request, len(request.prompt_ids), token))
                caches.append(cache)
        if rows:
            self._batch.add(rows, caches)

    @torch.inference_mode()
    def _decode(self) -> None:
        """One forward pass for every row in the batch, then emit each row's next token."""
        batch = self._batch
        inputs = batch.step_inputs()
        with self.loras.route([row.request.slot for row in batch.rows]):
            output = self.model(**inputs, use_cache=True)
        logits = output.logits[:, -1]
        greedy = logits.argmax(dim=-1).tolist()
        keep = []
        for i, row in enumerate(batch.rows):
            row.length += 1
            request = row.request
            plain = request.generator is None and not request.keep_logits
            token = greedy[i] if plain else self._next_token(request, logits[i])
            if self._emit(request, token):
                row.token = token
                keep.append(i)
        batch.keep(keep)

    def _count_rate(self, tokens: int) -> None:
        """Remember how many tokens one loop iteration made, for the recent tokens-per-second figure."""
        now = time.monotonic()
        with self._cond:
            self._recent.append((now, tokens))
            while now - self._recent[0][0] > 10:
                self._recent.popleft()

    def _next_token(self, request: Request, logits: torch.Tensor) -> int:
        """Pick the next token from one row's logits: greedy, or sampled with temperature and top-p."""
        if request.keep_logits:
            request.logits.append(logits.clone())
        if request.generator is None:
            return int(logits.argmax())
        probs = torch.softmax(logits.float() / request.sampling.temperature, dim=-1)
        if request.sampling.top_p < 1:
            sorted_probs, order = probs.sort(descending=True)
            outside = sorted_probs.cumsum(0) - sorted_probs > request.sampling.top_p  # keep the smallest nucleus
            probs = probs.scatter(0, order[outside], 0.0)
        return int(torch.multinomial(probs, 1, generator=request.generator))

    def _emit(self, request: Request, token: int) -> bool:
        """Hand `token` to the request's sink; return whether the request goes on."""
        if request.cancelled:
            self._finish(request, "cancelled")
            return False
        if token in self.stop_ids:
            self._finish(request, "stop")
            return False
        request.generated += 1
        self.counters["generated_tokens"] += 1
        request.sink(token, None)
        if request.generated >= request.sampling.max_tokens:
            self._finish(request, "length")
            return False
        return True

    def _finish(self, request: Request, reason: str) -> None:
        """End a request once: release its adapter, count it, tell its sink."""
        with self._cond:
            if request.finished:
                return
            request.finished = True
            if request.slot is not None:
                self._users[request.slot] -= 1
            key = (request.model, reason)
            self.counters["requests"][key] = self.counters["requests"].get(key, 0) + 1
        request.sink(None, reason)

    def _release_retired(self) -> None:
        """Free unloaded adapters' slots that no request uses any more."""
        with self._cond:
            done = [slot for slot in self._retired if not self._users.get(slot)]
            futures = [future for slot in done for future in self._retired.pop(slot)]
        for slot in done:
            self.loras.remove(slot)
        for future in futures:
            future.set_result(None)

    def _shutdown(self) -> None:
        """Cancel everything still waiting or running, and fail pending commands."""
        with self._cond:
            pending = [*self._waiting, *(row.request for row in self._batch.rows)]
            self._waiting.clear()
            commands, self._commands = self._commands, []
        for request in pending:
            self._finish(request, "cancelled")
        self._batch = Batch(self.model.config)
        for _, future in commands:
            future.set_exception(PixiuError("the engine stopped"))
        self._release_retired()
