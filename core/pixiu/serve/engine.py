"""The scheduler: one thread owns the model and advances every active request by one token per forward pass.

Continuous batching: between two decode steps the thread runs queued adapter loads, prefills admitted
requests and adds them to the batch, drops finished or cancelled ones, and frees retired adapter slots
once no request uses them. Prefill is chunked: one step feeds at most `prefill_chunk` prompt tokens (a
long prompt goes in over several steps, each into its own cache), so a decode step never waits behind
more than one chunk of someone's prompt. Rows of one step may use different adapters (see
`pixiu.serve.multi_lora`); the adapter table (`pixiu.serve.adapters`) maps names to slots, the sampler
(`pixiu.serve.sampler`) picks every row's token in one pass, and `pixiu.serve.kv` owns the cache layout.
An adapter served through peft (`pixiu.serve.single_adapter`: DoRA, IA3, AdaLoRA, prefix and prompt tuning) has a
batch of its own instead, and each step decodes every non-empty batch in turn, one token each, so continuous
batching holds within each and none waits for another to finish.
Requests hand results back through a sink callback called on the engine thread.

Reward models score on the same thread and the same base (`score`): see `Engine.score` for why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from pixiu.errors import PixiuError
from pixiu.methods import adapter_method, serving, serving_refusal
from pixiu.reward_model import is_reward_model, load_head, trained_max_len
from pixiu.serve import kv
from pixiu.serve.adapters import BASE, AdapterInfo, AdapterTable, WrongKind, generation_refusal, scoring_refusal
from pixiu.serve.batch import Batch, Row
from pixiu.serve.multi_lora import read_adapter
from pixiu.serve.request import EngineRequest, SamplingParams, Sink
from pixiu.serve.sampler import TokenLogprobs, adjust, sample, token_logprobs
from pixiu.serve.single_adapter import load_single

log = logging.getLogger("pixiu.serve")


class QueueFull(PixiuError):
    """The waiting queue is at its limit; the client should retry later."""


@dataclass(eq=False)
class _Prefill:
    """A request whose prompt is being fed to its own cache, chunk by chunk."""

    request: EngineRequest
    cache: kv.Cache
    done: int = 0
    """Prompt tokens already in `cache`."""


class Engine:
    """Serves the base model and named LoRA adapters from one background thread."""

    def __init__(
        self,
        model: PreTrainedModel,
        stop_ids: list[int],
        *,
        max_batch: int = 32,
        max_waiting: int = 256,
        max_adapters: int | None = None,
        prefill_chunk: int = 512,
    ):
        self.model = model.eval()
        self.stop_ids = set(stop_ids)
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        if prefill_chunk < 1:
            raise ValueError(f"prefill_chunk must be at least 1 token, not {prefill_chunk}")
        self.prefill_chunk = prefill_chunk
        """Prompt tokens prefilled per step, at most, between two decode steps."""
        self.adapters = AdapterTable(model, max_adapters)
        kv.new_cache(model.config)  # fail now, not at the first request, for unsupported caches
        self._cache_argument = kv.cache_argument(model)
        self.device = model.device
        """Where the model runs (its weights' device): prompts and batches are made there."""
        self._batch = Batch(self.device)
        self._singles: dict[int, Batch] = {}  # a single adapter's key -> the batch of its requests
        self._waiting: deque[EngineRequest] = deque()
        self._prefilling: deque[_Prefill] = deque()
        self._commands: list[tuple[Callable[[], object], Future]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.counters: dict[str, Any] = {
            "requests": {},
            "prompt_tokens": 0,
            "generated_tokens": 0,
            "rejected": 0,
            "score_requests": {},
            "scored_answers": 0,
        }
        """Finished requests by (model, finish reason), tokens read and generated, requests turned away, scoring
        requests by model and the answers they scored."""
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

    def close(self) -> None:
        """Stop, then detach every adapter and hook: the base model computes exactly what a fresh one does."""
        self.stop()
        self.adapters.detach()

    @property
    def vocab_size(self) -> int:
        """Rows of the model's output layer: the token ids a logit bias may name."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def running(self) -> bool:
        """Whether the engine thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ---- adapters --------------------------------------------------------------------------------

    def load_adapter(self, name: str, folder: Path, *, domain: str | None = None) -> AdapterInfo:
        """Load (or replace) adapter `name` trained for `domain`; requests already running on an older version
        finish on it. Past `max_adapters`, the least recently used adapter is evicted. A reward model (a folder
        with `reward_head.safetensors`) loads its head too, in fp32 on the model's device. An adapter the per-row
        engine cannot take (DoRA, IA3, AdaLoRA, prefix, prompt) is served through peft, in a batch of its own."""
        started = time.perf_counter()
        if refusal := serving_refusal(Path(folder), name):  # never serve a DoRA/IA3/prefix... adapter as plain LoRA
            raise PixiuError(refusal)
        method = adapter_method(Path(folder))
        if serving(Path(folder)) == "single":

            def install() -> AdapterInfo:  # on the engine thread: peft rearranges the model while loading
                single = load_single(self.model, Path(folder), method)
                return self.adapters.install(name, single, domain, 1000 * (time.perf_counter() - started))

        else:
            weights = read_adapter(Path(folder), dtype=self.model.dtype, device=self.device)  # off the engine thread
            reward = (load_head(folder, self.device), trained_max_len(folder)) if is_reward_model(folder) else None

            def install() -> AdapterInfo:
                return self.adapters.install(name, weights, domain, 1000 * (time.perf_counter() - started), reward)

        info = self._on_engine_thread(install)
        log.info("adapter %r (lora.method=%s) is served %s", name, method, info.served)
        return info

    def unload_adapter(self, name: str) -> Future:
        """Stop routing new requests to `name`; the future resolves once its running requests have finished."""
        future = self.adapters.retire(name)
        with self._cond:
            self._cond.notify()
        if not self.running:
            self.adapters.free_retired()
        return future

    # ---- requests --------------------------------------------------------------------------------

    def submit(self, model: str, prompt_ids: list[int], sampling: SamplingParams, sink: Sink) -> EngineRequest:
        """Queue a request for `model` (an adapter name or `BASE`); raises `UnknownModel` or `QueueFull`."""
        if not prompt_ids:
            raise ValueError("a request needs at least one prompt token")
        request = EngineRequest(model, list(prompt_ids), sampling, sink, generator=sampling.new_generator())
        with self._cond:
            if model != BASE:
                request.slot, request.adapter = self.adapters.acquire(model)
                if request.adapter.reward_model:
                    self.adapters.release(request.slot)
                    self._cond.notify()  # an unload may be waiting for this slot
                    raise WrongKind(generation_refusal(model))
            if len(self._waiting) >= self.max_waiting:
                if request.slot is not None:
                    self.adapters.release(request.slot)
                    self._cond.notify()  # an unload may be waiting for this slot
                self.counters["rejected"] += 1
                raise QueueFull(f"the server is busy: {len(self._waiting)} requests are waiting; retry shortly")
            self.counters["prompt_tokens"] += len(prompt_ids)
            self._waiting.append(request)
            self._cond.notify()
        return request

    def score(self, model: str, rows: Sequence[tuple[list[int], int]]) -> list[float]:
        """The reward model `model`'s score of each row: (token ids, the position whose final hidden state the head
        reads). Blocks until done; raises `UnknownModel`, or `WrongKind` when `model` is not a reward model.

        Why on the engine thread, between decode steps: the engine owns the one base model, and a reward model is
        only a LoRA adapter on it plus a head, so it takes a `MultiLora` slot like any adapter and a scoring pass
        routes every row to that slot; a second copy of the base would double the memory for no new weights, and
        a forward pass from another thread would race the hooks' routing. The decoder runs without the output
        head (`pixiu.reward_model.score_rows` does the same), then the fp32 head reads each row. Rows go in groups
        of at most `prefill_chunk` padded tokens (a longer row alone), each its own engine command, so decoding
        waits behind at most one group, as it does behind one prefill chunk.
        """
        if model == BASE:
            raise WrongKind(scoring_refusal(model))
        slot, info = self.adapters.acquire(model)  # held to the end: an unload waits for this scoring to finish
        try:
            if not info.reward_model:
                raise WrongKind(scoring_refusal(model))
            scores: list[float] = []
            for group in self._score_groups(rows):
                scores.extend(self._on_engine_thread(partial(self._score_rows, slot, group)))
        finally:
            self.adapters.release(slot)
            with self._cond:
                self._cond.notify()  # a retired slot may now be free
        with self._cond:
            self.counters["score_requests"][model] = self.counters["score_requests"].get(model, 0) + 1
            self.counters["scored_answers"] += len(rows)
        return scores

    def _score_groups(self, rows: Sequence[tuple[list[int], int]]) -> list[list[tuple[list[int], int]]]:
        """`rows` in order, cut into groups of at most `prefill_chunk` padded tokens (at least one row each)."""
        groups: list[list[tuple[list[int], int]]] = []
        width = 0
        for row in rows:
            if groups and max(width, len(row[0])) * (len(groups[-1]) + 1) <= self.prefill_chunk:
                groups[-1].append(row)
                width = max(width, len(row[0]))
            else:
                groups.append([row])
                width = len(row[0])
        return groups

    @torch.inference_mode()
    def _score_rows(self, slot: int, rows: list[tuple[list[int], int]]) -> list[float]:
        """One right-padded forward pass of the decoder through adapter `slot`, then its reward head at each row's
        position; engine thread only. Attention is causal, so no row sees the padding after it."""
        head = self.adapters.heads()[slot]
        input_ids = torch.zeros(len(rows), max(len(ids) for ids, _ in rows), dtype=torch.long)
        for i, (ids, _) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
        decoder = getattr(self.model, self.model.base_model_prefix)  # the hidden states, no vocabulary projection
        with self.adapters.lora.route([slot] * len(rows)):
            hidden = decoder(input_ids=input_ids.to(self.device), use_cache=False).last_hidden_state
        index = torch.arange(len(rows), device=self.device)
        last = hidden[index, torch.tensor([position for _, position in rows], device=self.device)]
        return head(last.float()).squeeze(-1).tolist()

    def cancel(self, request: EngineRequest, reason: str = "cancelled") -> None:
        """Stop a request; it leaves the batch before the next step and ends with `reason` (the first one given).

        "cancelled" when a client went away, "stop" when a stop string ended the answer.
        """
        with self._cond:
            if not request.cancelled:
                request.cancelled, request.cancel_reason = True, reason
            if request in self._waiting:
                self._waiting.remove(request)
                waiting = True
            else:
                waiting = False
        if waiting:
            self._finish(request, request.cancel_reason)

    def stats(self) -> dict[str, Any]:
        """Queue depth, active sequences, loaded adapters, counters, and tokens per second lately."""
        now = time.monotonic()
        with self._cond:
            recent = [(t, n) for t, n in self._recent if now - t <= 10]
            return {
                "waiting": len(self._waiting),
                "active": len(self._prefilling)
                + sum(not row.request.finished for row in self._rows()),  # ended rows leave next
                "adapters": len(self.adapters.loaded()),
                "adapter_bytes": self.adapters.allocated_bytes,
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
                while not (
                    self._stopping
                    or self._commands
                    or self._waiting
                    or self._prefilling
                    or self._batch.rows
                    or self._singles
                    or self.adapters.freeable  # not `retiring`: a slot a scoring call holds would spin the loop
                ):
                    self._cond.wait()
                if self._stopping:
                    break
                commands, self._commands = self._commands, []
                free = self.max_batch - len(self._rows()) - len(self._prefilling)
                admitted = [self._waiting.popleft() for _ in range(min(free, len(self._waiting)))]
            self._step(commands, admitted)
            del commands, admitted  # hold no finished request while waiting for work
        self._shutdown()

    def _step(self, commands: list[tuple[Callable[[], object], Future]], admitted: list[EngineRequest]) -> None:
        """Run queued commands, admit new requests, prefill one chunk's worth, decode one token for the batch,
        free unloaded adapters."""
        for function, future in commands:
            try:
                future.set_result(function())
            except Exception as exc:  # the caller gets the error; the engine goes on
                future.set_exception(exc)
        generated = self.counters["generated_tokens"]
        self._prefilling.extend(
            _Prefill(request, kv.new_cache(self.model.config, self.model.dtype, self.device)) for request in admitted
        )
        try:
            self._prefill()
            for batch in [self._batch, *self._singles.values()]:  # each group in turn, one token each
                if batch.rows:
                    self._decode(batch)
            self._singles = {key: batch for key, batch in self._singles.items() if batch.rows}
        except Exception:  # a failed step must fail its requests, not the server
            log.exception("decoding step failed; its requests end with finish_reason 'error'")
            for request in [*(p.request for p in self._prefilling), *(row.request for row in self._rows())]:
                self._finish(request, "error")
            self._prefilling.clear()
            self._batch, self._singles = Batch(self.device), {}
        self.adapters.free_retired()
        self._count_rate(self.counters["generated_tokens"] - generated)

    @torch.inference_mode()
    def _prefill(self) -> None:
        """Feed up to `prefill_chunk` prompt tokens, oldest request first; a request whose prompt is all in
        emits its first token and joins the batch."""
        for prefill in [p for p in self._prefilling if p.request.cancelled]:
            self._prefilling.remove(prefill)
            self._finish(prefill.request, prefill.request.cancel_reason)
        budget = self.prefill_chunk
        joining: dict[Batch, tuple[list[Row], list[kv.Cache]]] = {}
        while budget and self._prefilling:
            prefill = self._prefilling[0]
            request = prefill.request
            chunk = request.prompt_ids[prefill.done : prefill.done + budget]
            single = request.adapter.single if request.adapter else None
            inputs = {"input_ids": torch.tensor([chunk], device=self.device)}
            if single is not None and prefill.done == 0:  # prefix or prompt tuning's virtual tokens go in first
                single.seed_cache(prefill.cache)
                inputs = single.first_inputs(self.model.get_input_embeddings(), inputs["input_ids"])
            try:
                with self._through([request]):
                    output = self.model(
                        **inputs,
                        use_cache=True,
                        logits_to_keep=1,
                        **{self._cache_argument: prefill.cache},
                    )
            except Exception:  # one bad prompt fails alone, not the batch
                log.exception("prefill failed; the request ends with finish_reason 'error'")
                self._prefilling.popleft()
                self._finish(request, "error")
                continue
            prefill.done += len(chunk)
            budget -= len(chunk)
            if prefill.done < len(request.prompt_ids):
                continue  # the budget is spent; the rest of this prompt goes in at the next steps
            self._prefilling.popleft()
            token, logprobs = self._choose(output.logits[:, -1], [request])[0]
            if self._emit(request, token, logprobs):
                rows, caches = joining.setdefault(self._group(request), ([], []))
                rows.append(Row(request, len(request.prompt_ids) + (single.virtual_tokens if single else 0), token))
                caches.append(prefill.cache)
        for batch, (rows, caches) in joining.items():
            batch.add(rows, caches)

    def _group(self, request: EngineRequest) -> Batch:
        """The batch `request` decodes in: the mixed one, or its single adapter's own."""
        if request.adapter is None or request.adapter.single is None:
            return self._batch
        assert request.slot is not None, "a request on an adapter holds its key"
        return self._singles.setdefault(request.slot, Batch(self.device))

    def _through(self, requests: list[EngineRequest]) -> AbstractContextManager[None]:
        """How one forward pass over `requests` (rows of one group) reaches their adapters: each row's LoRA slot in
        the mixed batch, or the one single adapter of its own batch."""
        single = requests[0].adapter.single if requests[0].adapter else None
        return single.active() if single else self.adapters.lora.route([request.slot for request in requests])

    def _rows(self) -> list[Row]:
        """The rows of every batch."""
        singles = list(self._singles.values())  # one C call: safe while the engine thread adds a group
        return [*self._batch.rows, *(row for batch in singles for row in batch.rows)]

    @torch.inference_mode()
    def _decode(self, batch: Batch) -> None:
        """One forward pass for every row in `batch`, then emit each row's next token."""
        inputs = batch.step_inputs()
        requests = [row.request for row in batch.rows]
        with self._through(requests):
            output = self.model(**inputs, use_cache=True, **{self._cache_argument: batch.cache})
        keep = []
        for i, (row, (token, logprobs)) in enumerate(
            zip(batch.rows, self._choose(output.logits[:, -1], requests), strict=False)
        ):
            row.length += 1
            if self._emit(row.request, token, logprobs):
                row.token = token
                keep.append(i)
        batch.keep(keep)

    @staticmethod
    def _choose(logits: torch.Tensor, requests: list[EngineRequest]) -> list[tuple[int, TokenLogprobs | None]]:
        """Each request's next token from its row of `logits` (rows, vocab), with logprobs if it asked for them."""
        params = [request.sampling for request in requests]
        logits = adjust(logits, params, [request.output_ids for request in requests])
        tokens = sample(logits, params, [request.generator for request in requests])
        return list(zip(tokens, token_logprobs(logits, params, tokens), strict=False))

    def _count_rate(self, tokens: int) -> None:
        """Remember how many tokens one loop iteration made, for the recent tokens-per-second figure."""
        now = time.monotonic()
        with self._cond:
            self._recent.append((now, tokens))
            while now - self._recent[0][0] > 10:
                self._recent.popleft()

    def _emit(self, request: EngineRequest, token: int, logprobs: TokenLogprobs | None) -> bool:
        """Hand `token` to the request's sink (after recording it); return whether the request goes on."""
        if request.cancelled:
            self._finish(request, request.cancel_reason)
            return False
        if token in self.stop_ids:
            self._finish(request, "stop")
            return False
        request.output_ids.append(token)
        if logprobs is not None:
            request.logprobs.append(logprobs)
        request.generated += 1
        self.counters["generated_tokens"] += 1
        request.sink(token, None)
        if request.generated >= request.sampling.max_tokens:
            self._finish(request, "length")
            return False
        return True

    def _finish(self, request: EngineRequest, reason: str) -> None:
        """End a request once: release its adapter, count it, tell its sink."""
        with self._cond:
            if request.finished:
                return
            request.finished = True
            if request.slot is not None:
                self.adapters.release(request.slot)
                self._cond.notify()  # a retired slot may now be free (this may run off the engine thread)
            key = (request.model, reason)
            self.counters["requests"][key] = self.counters["requests"].get(key, 0) + 1
        request.sink(None, reason)

    def _shutdown(self) -> None:
        """Cancel everything still waiting or running, and fail pending commands."""
        with self._cond:
            pending = [
                *self._waiting,
                *(p.request for p in self._prefilling),
                *(row.request for row in self._rows()),
            ]
            self._waiting.clear()
            self._prefilling.clear()
            commands, self._commands = self._commands, []
        for request in pending:
            self._finish(request, request.cancel_reason)
        self._batch, self._singles = Batch(self.device), {}
        for _, future in commands:
            future.set_exception(PixiuError("the engine stopped"))
        self.adapters.free_retired()
