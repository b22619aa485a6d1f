"""The engine for encoder-decoder bases (T5, mT5): the encoder reads each prompt once, the decoder writes every
row's answer in one batched pass per token.

It is `pixiu.serve.engine.Engine` (its queue, adapters, sampling, sinks, counters and thread) with another way of
computing a step, which is why it subclasses it instead of copying 400 lines. Batching stays continuous: requests
join between two steps and leave when they end. A step encodes the newly admitted prompts (as many as fit in
`prefill_chunk` tokens, at least one; a prompt is encoded whole, never in chunks), then runs the decoder over
every row, each routed to its own adapter (`pixiu.serve.multi_lora`). The decoder keeps no KV cache: each step
feeds every row's answer so far (right-padded; attention in the decoder is causal, so no row sees the padding
after it) against its kept encoder states (right-padded, masked). That costs a step time that grows with the
answer's length, which suits the short answers of the domains; a decoder cache is not implemented.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from transformers.modeling_outputs import BaseModelOutput

from pixiu.serve.batch import Row
from pixiu.serve.engine import Engine
from pixiu.serve.request import EngineRequest

log = logging.getLogger("pixiu.serve")


@dataclass(eq=False)
class EncodedRow(Row):
    """A row of an encoder-decoder batch: besides `Row`'s, its prompt's encoder states (prompt tokens, width)."""

    encoded: torch.Tensor


class Seq2SeqEngine(Engine):
    """Serves an encoder-decoder base and its named LoRA adapters, rows of different adapters in one batch."""

    @torch.inference_mode()
    def _prefill(self) -> None:
        """Encode the admitted prompts (up to `prefill_chunk` tokens, at least one prompt) in one padded pass, each
        row through its own adapter; each then joins the batch, which decodes its first token in this step."""
        for prefill in [p for p in self._prefilling if p.request.cancelled]:
            self._prefilling.remove(prefill)
            self._finish(prefill.request, prefill.request.cancel_reason)
        budget, requests = self.prefill_chunk, list[EngineRequest]()
        while self._prefilling and (not requests or len(self._prefilling[0].request.prompt_ids) <= budget):
            request = self._prefilling.popleft().request
            budget -= len(request.prompt_ids)
            requests.append(request)
        if not requests:
            return
        input_ids, mask = _right_padded([r.prompt_ids for r in requests], self.device)
        with self.adapters.lora.route([r.slot for r in requests]):
            hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=mask).last_hidden_state
        start = int(self.model.config.decoder_start_token_id)
        rows = [
            EncodedRow(request, 1, start, hidden[i, : len(request.prompt_ids)]) for i, request in enumerate(requests)
        ]
        # sorted by adapter slot, base rows first, so that each run of rows multiplies through its own adapters
        self._batch.rows = sorted([*self._batch.rows, *rows], key=lambda row: _slot_order(row.request.slot))

    @torch.inference_mode()
    def _decode(self) -> None:
        """One decoder pass over every row's answer so far, then emit each row's next token."""
        rows = [row for row in self._batch.rows if isinstance(row, EncodedRow)]
        requests = [row.request for row in rows]
        start = int(self.model.config.decoder_start_token_id)
        decoder_ids, _ = _right_padded([[start, *request.output_ids] for request in requests], self.device)
        encoded = torch.nn.utils.rnn.pad_sequence([row.encoded for row in rows], batch_first=True)
        lengths = torch.tensor([len(row.encoded) for row in rows], device=self.device)
        encoder_mask = (torch.arange(encoded.shape[1], device=self.device) < lengths[:, None]).long()
        with self.adapters.lora.route([request.slot for request in requests]):
            output = self.model(
                encoder_outputs=BaseModelOutput(last_hidden_state=encoded),
                attention_mask=encoder_mask,
                decoder_input_ids=decoder_ids,
                use_cache=False,
            )
        last = torch.tensor([len(request.output_ids) for request in requests], device=self.device)
        logits = output.logits[torch.arange(len(rows), device=self.device), last]
        kept = []
        for row, (token, logprobs) in zip(rows, self._choose(logits, requests), strict=True):
            row.length += 1
            if self._emit(row.request, token, logprobs):
                row.token = token
                kept.append(row)
        self._batch.rows = list(kept)


def _right_padded(sequences: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids as one right-padded (with 0) batch on `device`, and its attention mask."""
    width = max(len(ids) for ids in sequences)
    ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
    return ids.to(device), mask.to(device)


def _slot_order(slot: int | None) -> int:
    """Where a row goes in the batch: by its adapter slot, base rows (no slot) first."""
    return -1 if slot is None else slot
