"""Serving: one process holds the base model once; every domain is a LoRA adapter chosen per request.

- `engine`: the scheduler thread (continuous batching, per-row adapters, cancellation, bounded queue);
- `lora` and `batch`: the batched multi-adapter LoRA op and the shared left-padded KV cache;
- `app`, `admin`, `responses`, `state`, `http`, `protocol`: the OpenAI-compatible HTTP API (FastAPI);
- `generation` and `text`: one request seen from asyncio, detokenised incrementally, cut at stop strings;
- `server`: what `pixiu serve` loads at startup; `chat`: the client behind `pixiu chat`;
- `static/`: the web chat page served at `/` (plain HTML, CSS and JS; no build step).
"""
