"""200 concurrent requests over loopback, spread over three adapters and the base: no errors, no crossed adapters;
and (slow) a soak of such bursts for minutes with memory sampled."""

import asyncio
import gc
import os
import time

import httpx
import pytest

from pixiu.serve.request import EngineRequest
from pixiu.serve.server import background_server

from .helpers import MODELS, PROMPTS, chat_ids, eventually

REQUESTS = 200
MAX_TOKENS = 6
LOAD_PROMPTS = PROMPTS[:3]  # 12 solo references are enough, and each takes a `generate` call


def rss_mib() -> float:
    """Resident memory of this process (Linux)."""
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def live_requests() -> list[EngineRequest]:
    """Engine requests still referenced by anything."""
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, EngineRequest)]


async def fire(url: str) -> list[tuple[str, str, httpx.Response]]:
    """Send every request at once; the whole burst must finish within a minute."""
    limits = httpx.Limits(max_connections=REQUESTS, max_keepalive_connections=REQUESTS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one(i: int) -> tuple[str, str, httpx.Response]:
            model, prompt = MODELS[i % len(MODELS)], LOAD_PROMPTS[(i // len(MODELS)) % len(LOAD_PROMPTS)]
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": MAX_TOKENS}
            return model, prompt, await client.post("/v1/chat/completions", json=body)

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(REQUESTS))), timeout=60)


def test_200_concurrent_requests_over_four_models(make_engine, make_app, tokenizer, reference):
    engine = make_engine(max_batch=32, max_waiting=REQUESTS).start()
    solo = {
        (m, p): tokenizer.decode(reference(m, chat_ids(tokenizer, p), MAX_TOKENS)[0], skip_special_tokens=True)
        for m in MODELS
        for p in LOAD_PROMPTS
    }
    assert len({solo[(m, PROMPTS[0])] for m in MODELS}) == len(MODELS)  # a crossed adapter would be visible
    before = rss_mib()
    with background_server(make_app(engine)) as url:
        results = asyncio.run(fire(url))
    errors = [(m, r.status_code, r.text[:200]) for m, _, r in results if r.status_code != 200]
    assert errors == []
    crossed = [(m, p) for m, p, r in results if r.json()["choices"][0]["message"]["content"] != solo[(m, p)]]
    assert crossed == []
    eventually(lambda: engine._batch.cache is None and not live_requests())
    stats = engine.stats()
    assert stats["active"] == 0 and stats["waiting"] == 0 and sum(stats["requests"].values()) == REQUESTS
    assert rss_mib() - before < 300, "memory grew by more than 300 MiB"


SOAK_SECONDS = 180
"""How long the soak keeps the server under mixed load."""


@pytest.mark.slow
def test_soak_mixed_adapter_load_shows_no_memory_growth(make_engine, make_app):
    """Bursts of mixed-adapter requests for a few minutes: no errors, and memory levels off instead of growing."""
    engine = make_engine(max_batch=32, max_waiting=REQUESTS).start()
    samples: list[float] = []
    deadline = time.monotonic() + SOAK_SECONDS
    with background_server(make_app(engine)) as url:
        while time.monotonic() < deadline:
            results = asyncio.run(fire(url))
            assert [r.status_code for _, _, r in results if r.status_code != 200] == []
            gc.collect()
            samples.append(rss_mib())
    assert len(samples) >= 4, f"only {len(samples)} bursts in {SOAK_SECONDS} s"
    warm = samples[len(samples) // 4]  # allocator and caches settle during the first quarter
    assert max(samples[len(samples) // 4 :]) - warm < 50, f"memory kept growing (MiB per burst): {samples}"
    eventually(lambda: engine._batch.cache is None and not live_requests())
