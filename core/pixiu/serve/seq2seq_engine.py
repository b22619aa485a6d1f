"""The engine for encoder-decoder bases (T5, mT5): the encoder reads each prompt once, the decoder writes every
row's answer in one batched pass per token.

It is `pixiu.serve.engine.Engine` (its queue, adapters, sampling, sinks, counters and thread) with another way of
computing a step, which is why it subclasses it instead of copying 400 lines. Batching stays continuous: requests
join between two steps and leave when they end. An admitted request is prefilled alone, through its adapter: its
prompt is encoded whole (`prefill_chunk` caps the prompt tokens encoded between two decode steps, at least one
prompt; a prompt is never cut into chunks) and the decoder's first step fills its cache (the decoder's own
self-attention and the cross-attention's keys and values of the encoder states) and gives its first token. Then
it joins the batch: one decoder pass per token over every row, each routed to its own adapter
(`pixiu.serve.multi_lora`), over one merged cache (`pixiu.serve.kv.merge_encoder_decoder`: decoder columns
left-padded, encoder columns right-padded, both masked), rebuilt only when rows join or leave.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DynamicCache, EncoderDecoderCache
from transformers.modeling_outputs import BaseModelOutput

from pixiu.errors import PixiuError
from pixiu.methods import adapter_method, serving
from pixiu.serve import kv
from pixiu.serve.adapters import AdapterInfo
from pixiu.serve.batch import Batch, Row
from pixiu.serve.engine import Engine, log


@dataclass(eq=False)
class EncodedRow(Row):
    """A row of an encoder-decoder batch: besides `Row`'s, its prompt's encoder states (1, prompt tokens, width)
    and its own cache, as of when the batch last changed."""

    encoded: torch.Tensor
    cache: EncoderDecoderCache


@dataclass
class _Joint:
    """The batch's rows as one model input: their merged cache, the masks of its padding, the padded encoder states."""

    rows: list[EncodedRow]
    cache: EncoderDecoderCache
    decoder_mask: torch.Tensor
    """(rows, decoder columns): 1 where a row's decoder token is cached."""
    encoder_mask: torch.Tensor
    """(rows, encoder columns): 1 over a row's prompt."""
    encoded: torch.Tensor


class Seq2SeqEngine(Engine):
    """Serves an encoder-decoder base and its named LoRA adapters, rows of different adapters in one batch."""

    _joint: _Joint | None = None

    def load_adapter(self, name: str, folder: Path, *, domain: str | None = None) -> AdapterInfo:
        """`Engine.load_adapter`, for the LoRA family only: an adapter pixiu serves through peft on a decoder-only
        base (DoRA, IA3, AdaLoRA, ...) is refused, with the merge route."""
        if serving(Path(folder)) == "single":
            method = adapter_method(Path(folder))
            raise PixiuError(
                f"adapter {name} ({folder}) was trained with lora.method={method}, which pixiu serves one adapter at a "
                f"time through peft on decoder-only bases only; on this encoder-decoder base merge it and serve the "
                f"result: pixiu adapters merge {name} --output DIR; pixiu serve --base DIR"
            )
        return super().load_adapter(name, folder, domain=domain)

    @torch.inference_mode()
    def _prefill(self) -> None:
        """Prefill admitted requests alone (up to `prefill_chunk` prompt tokens, at least one request): encode the
        prompt, run the decoder's first step into the request's own cache, emit its first token, join the batch."""
        for prefill in [p for p in self._prefilling if p.request.cancelled]:
            self._prefilling.remove(prefill)
            self._finish(prefill.request, prefill.request.cancel_reason)
        budget, rows = self.prefill_chunk, list[Row]()
        start = int(self.model.config.decoder_start_token_id)
        while self._prefilling and (not rows or len(self._prefilling[0].request.prompt_ids) <= budget):
            request = self._prefilling.popleft().request
            budget -= len(request.prompt_ids)
            try:
                with self.adapters.lora.route([request.slot]):
                    encoded = self.model.get_encoder()(
                        input_ids=torch.tensor([request.prompt_ids], device=self.device)
                    ).last_hidden_state
                    output = self.model(
                        encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                        decoder_input_ids=torch.tensor([[start]], device=self.device),
                        use_cache=True,
                        **{self._cache_argument: EncoderDecoderCache(DynamicCache(), DynamicCache())},
                    )
            except Exception:  # one bad prompt fails alone, not the batch
                log.exception("prefill failed; the request ends with finish_reason 'error'")
                self._finish(request, "error")
                continue
            token, logprobs = self._choose(output.logits[:, -1], [request])[0]
            if self._emit(request, token, logprobs):
                rows.append(EncodedRow(request, 1, token, encoded, output.past_key_values))
        if rows:  # sorted by adapter slot, base rows first: each run of rows multiplies through its own adapters
            self._batch.rows = sorted([*self._batch.rows, *rows], key=lambda row: _slot_order(row.request.slot))

    @torch.inference_mode()
    def _decode(self, batch: Batch) -> None:
        """One decoder step for every row in the batch (the engine's only one: no adapter is served single here),
        then emit each row's next token."""
        rows = [row for row in batch.rows if isinstance(row, EncodedRow)]
        joint, self._joint = self._joint, None  # kept again once this step has succeeded
        if joint is not None and joint.rows != rows:  # rows joined or left: each takes its part, then merge anew
            _split(joint)
            joint = None
        joint = joint or self._join(rows)
        joint.decoder_mask = torch.nn.functional.pad(joint.decoder_mask, (0, 1), value=1)
        requests = [row.request for row in rows]
        with self.adapters.lora.route([request.slot for request in requests]):
            output = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=joint.encoded),
                attention_mask=joint.encoder_mask,
                decoder_input_ids=torch.tensor([[row.token] for row in rows], device=self.device),
                decoder_attention_mask=joint.decoder_mask,
                use_cache=True,
                **{self._cache_argument: joint.cache},
            )
        kept = []
        for row, (token, logprobs) in zip(rows, self._choose(output.logits[:, -1], requests), strict=True):
            row.length += 1
            if self._emit(row.request, token, logprobs):
                row.token = token
                kept.append(row)
        self._joint = joint if kept else None
        batch.rows = list(kept)

    def _join(self, rows: list[EncodedRow]) -> _Joint:
        """Merge the rows' own caches and encoder states into one batch input, with the masks of their padding."""
        width = max(row.length for row in rows)
        encoded_width = max(row.encoded.shape[1] for row in rows)
        decoder_mask = torch.zeros((len(rows), width), dtype=torch.long, device=self.device)
        encoder_mask = torch.zeros((len(rows), encoded_width), dtype=torch.long, device=self.device)
        for index, row in enumerate(rows):
            decoder_mask[index, width - row.length :] = 1
            encoder_mask[index, : row.encoded.shape[1]] = 1
        encoded = torch.cat(
            [torch.nn.functional.pad(row.encoded, (0, 0, 0, encoded_width - row.encoded.shape[1])) for row in rows]
        )
        cache = kv.merge_encoder_decoder([row.cache for row in rows], width, encoded_width)
        return _Joint(list(rows), cache, decoder_mask, encoder_mask, encoded)


def _split(joint: _Joint) -> None:
    """Give each row of `joint` its own part of the merged cache again (views, no copy)."""
    width = joint.decoder_mask.shape[1]
    for index, row in enumerate(joint.rows):
        row.cache = kv.encoder_decoder_row(joint.cache, index, width - row.length, row.encoded.shape[1])


def _slot_order(slot: int | None) -> int:
    """Where a row goes in the batch: by its adapter slot, base rows (no slot) first."""
    return -1 if slot is None else slot
