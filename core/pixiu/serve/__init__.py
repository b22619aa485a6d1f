"""Serving: one process holds the base model once; every domain is a LoRA adapter chosen per request.

Split along vLLM's seams:

- `engine`: the scheduler thread (continuous batching, cancellation, bounded queue);
- `request`: one sequence and its `SamplingParams`; `sampler`: every row's next token in one pass;
- `adapters`: the adapter table (name <-> slot, reference counts, retire, `max_adapters` with LRU eviction);
- `multi_lora`: the per-row LoRA maths over stacked slots; `batch` and `kv`: the shared left-padded KV cache,
  `kv` being the only module that touches transformers' cache internals;
- `app`, `admin`, `responses`, `state`, `http`, `protocol`: the OpenAI-compatible HTTP API (FastAPI), with typed
  request and response models; `metrics`: `/metrics` through prometheus_client;
- `generation`, `postprocess` and `text`: one request seen from asyncio, post-processed by plugins, detokenised
  incrementally, cut at stop strings;
- `server`: what `pixiu serve` loads at startup; `chat`: the client behind `pixiu chat`;
- `vllm` and `proxy`: `pixiu serve --engine vllm`, the hand-off to vLLM (adapter checks, its command line) behind
  a thin proxy that keeps plugins' `process_response`;
- `static/`: the web chat page served at `/` (plain HTML, CSS and JS; no build step).
"""
