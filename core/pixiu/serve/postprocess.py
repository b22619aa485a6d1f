"""Response post-processing by plugins: every `process_response` implementation rewrites the answer in turn."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool

from pixiu.plugins import fold_hook
from pixiu.serve.adapters import AdapterInfo

log = logging.getLogger("pixiu.serve")


def process_response(domain: str | None, text: str, *, adapter: str, finish_reason: str) -> str:
    """Pass `text` through each plugin's `process_response` (in pluggy's call order) and return the result.

    `domain` is the adapter's real domain (None when unknown), `adapter` the name it is served under and
    `finish_reason` how the answer ended ("length": cut by `max_tokens`).
    Each implementation sees the text as the previous one left it; returning None keeps it unchanged,
    and one that raises is reported and skipped (the answer still goes out).
    """
    return fold_hook("process_response", "text", domain=domain, text=text, adapter=adapter, finish_reason=finish_reason)


async def postprocess(adapter: AdapterInfo | None, text: str, *, finish_reason: str) -> str:
    """The answer as plugins rewrite it, computed in a worker thread (hooks may block); the base's is unchanged."""
    if adapter is None:
        return text
    return await rewrite(adapter.domain, text, adapter=adapter.name, finish_reason=finish_reason)


async def rewrite(domain: str | None, text: str, *, adapter: str, finish_reason: str) -> str:
    """`process_response` for the adapter served as `adapter`, trained for `domain`, run in a worker thread."""
    return await run_in_threadpool(process_response, domain, text, adapter=adapter, finish_reason=finish_reason)


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of `text` as the served model's tokenizer splits it: what an addition costs in `completion_tokens`."""
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def streamed_addition(text: str, answer: str, *, adapter: str) -> str:
    """What a stream that already sent `text` can still send of the post-processed `answer`: what it appends.

    Text already streamed cannot change, so a rewrite that does more than append is logged and not streamed.
    """
    if answer.startswith(text):
        return answer[len(text) :]
    log.warning("process_response rewrote streamed text of %r; a stream only gets what is appended", adapter)
    return ""
