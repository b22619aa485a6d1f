"""A thin OpenAI-compatible proxy in front of another server (vLLM) that keeps pixiu's `process_response` hooks.

/v1/models, /v1/completions and /v1/chat/completions are forwarded as they are; chat answers of an adapter are
then post-processed exactly as `pixiu serve` does it (`pixiu.serve.postprocess`): whole answers are rewritten,
streams get what the hooks append, in the chunk that carries the finish, and what they add is counted in the
upstream's `usage` with the served tokenizer. Text completions and the base model's answers pass unchanged, as in
pixiu's own server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pixiu.serve.postprocess import count_tokens, rewrite, streamed_addition
from pixiu.serve.protocol import error_body

_HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def build_proxy(upstream: str, domains: dict[str, str | None], tokenizer, *, timeout: float = 600.0) -> Starlette:
    """The proxy app in front of the OpenAI-compatible server at `upstream` (e.g. "http://127.0.0.1:8001").

    Args:
        upstream: Base URL of the server answering, without `/v1`.
        domains: Each adapter's served name -> the domain it was trained for (None: unknown); other model names
            (the base) are never post-processed.
        tokenizer: The served base model's tokenizer, to count what the hooks add in `usage.completion_tokens`.
        timeout: Seconds the upstream has to answer one request.
    """
    client = httpx.AsyncClient(base_url=upstream.rstrip("/"), timeout=timeout)

    async def forward(request: Request) -> Response:
        body = await request.body()
        chat = request.url.path == "/v1/chat/completions"
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        model = payload.get("model") if isinstance(payload, dict) else None
        rewritten = chat and isinstance(model, str) and model in domains
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", *_HOP_HEADERS}}
        upstream_request = client.build_request(request.method, request.url.path, content=body, headers=headers)
        try:
            response = await client.send(upstream_request, stream=True)
        except httpx.TransportError as exc:
            reason = f"the upstream server at {upstream} cannot be reached ({exc}); is vLLM still starting or gone?"
            return JSONResponse(error_body(reason, type="server_error"), status_code=502)
        if not rewritten or response.status_code != 200:
            return _relay(response)
        assert isinstance(model, str)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return StreamingResponse(
                _rewrite_stream(response, model, domains[model], tokenizer),
                media_type="text/event-stream",
                background=BackgroundTask(response.aclose),
            )
        answer = json.loads(await response.aread())
        await response.aclose()
        added = 0
        for choice in answer.get("choices", []):
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                text, finish = message["content"], choice.get("finish_reason") or "stop"
                message["content"] = await rewrite(domains[model], text, adapter=model, finish_reason=finish)
                added += await run_in_threadpool(_added_tokens, tokenizer, text, message["content"])
        _count_in_usage(answer.get("usage"), added)
        return JSONResponse(answer)

    routes = [
        Route("/v1/models", forward, methods=["GET"]),
        Route("/v1/chat/completions", forward, methods=["POST"]),
        Route("/v1/completions", forward, methods=["POST"]),
        Route("/health", forward, methods=["GET"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=routes, lifespan=lifespan)


def _relay(response: httpx.Response) -> StreamingResponse:
    """The upstream response passed on as it arrives."""
    headers = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_HEADERS}
    status, closing = response.status_code, BackgroundTask(response.aclose)
    return StreamingResponse(response.aiter_raw(), status_code=status, headers=headers, background=closing)


def _added_tokens(tokenizer, text: str, answer: str) -> int:
    """Tokens a rewrite of `text` into `answer` adds: the appended part's, else the difference of the two wholes."""
    if answer.startswith(text):
        return count_tokens(tokenizer, answer[len(text) :]) if len(answer) > len(text) else 0
    return count_tokens(tokenizer, answer) - count_tokens(tokenizer, text)


def _count_in_usage(usage: object, added: int) -> None:
    """Count `added` completion tokens in an upstream `usage` object, when the answer carries one."""
    if isinstance(usage, dict) and added:
        usage["completion_tokens"] = usage.get("completion_tokens", 0) + added
        usage["total_tokens"] = usage.get("total_tokens", 0) + added


async def _rewrite_stream(response: httpx.Response, model: str, domain: str | None, tokenizer) -> AsyncIterator[str]:
    """The upstream's server-sent events, with what `process_response` appends added to each choice's last chunk
    and counted in the usage of the chunks that follow (`stream_options.include_usage`)."""
    sent: dict[int, list[str]] = {}
    added = 0
    async for line in response.aiter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            yield f"{line}\n" if line else "\n"
            continue
        chunk = json.loads(line.removeprefix("data: "))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = sent.setdefault(choice.get("index", 0), [])
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            if choice.get("finish_reason"):
                streamed = "".join(text)
                answer = await rewrite(domain, streamed, adapter=model, finish_reason=choice["finish_reason"])
                addition = streamed_addition(streamed, answer, adapter=model)
                if addition:
                    delta["content"] = (delta.get("content") or "") + addition
                    choice["delta"] = delta
                    added += await run_in_threadpool(count_tokens, tokenizer, addition)
        _count_in_usage(chunk.get("usage"), added)
        yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n"
