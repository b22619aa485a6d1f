"""Constants and helpers shared by the serving tests."""

from __future__ import annotations

import asyncio
import time

import httpx

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP = ["gate_proj", "up_proj", "down_proj"]
ADAPTERS = {"law": (8, ATTENTION + MLP), "medical": (4, ["q_proj", "v_proj"]), "zhihu": (8, MLP)}
"""name -> (rank, target modules): different ranks and targets, so slots with padding are exercised."""
MODELS = ["base", *ADAPTERS]
PROMPTS = [
    "被告人张某盗窃财物，构成什么罪？",
    "How do I make a cup of tea?",
    "糖尿病的典型症状有哪些",
    "hello",
    "What is the capital of France?",
    "感冒发热时应该怎么办？请简单回答。",
]
ADMIN_TOKEN = "s3cret"
RM_MAX_LEN = 48
"""The test reward model's training max_seq_len: long prompts and answers are cut to it."""


def call(app, method: str, url: str, **kwargs) -> httpx.Response:
    """One request to `app` in process (no socket)."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://pixiu.test", timeout=30) as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


def chat_ids(tokenizer, content: str) -> list[int]:
    """The prompt ids the server builds for a one-message chat."""
    from pixiu.data import render

    text = render(tokenizer, [{"role": "user", "content": content}], add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def eventually(condition, timeout: float = 5.0) -> None:
    """Wait until `condition()` is true (the engine thread may still be finishing a step), or fail."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
