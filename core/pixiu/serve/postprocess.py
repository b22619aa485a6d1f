"""Response post-processing by plugins: every `process_response` implementation rewrites the answer in turn."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from pixiu.plugins import fold_hook
from pixiu.serve.adapters import AdapterInfo


def process_response(domain: str | None, text: str, *, adapter: str) -> str:
    """Pass `text` through each plugin's `process_response` (in pluggy's call order) and return the result.

    `domain` is the adapter's real domain (None when unknown) and `adapter` the name it is served under.
    Each implementation sees the text as the previous one left it; returning None keeps it unchanged,
    and one that raises is reported and skipped (the answer still goes out).
    """
    return fold_hook("process_response", "text", domain=domain, text=text, adapter=adapter)


async def postprocess(adapter: AdapterInfo | None, text: str) -> str:
    """The answer as plugins rewrite it, computed in a worker thread (hooks may block); the base's is unchanged."""
    if adapter is None:
        return text
    return await run_in_threadpool(process_response, adapter.domain, text, adapter=adapter.name)
