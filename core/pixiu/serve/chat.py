"""A small client of pixiu's chat API that yields the answer as it streams in (used by `pixiu chat`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx

from pixiu.domain import Messages
from pixiu.errors import PixiuError


def stream_reply(url: str, model: str, messages: Messages, *, max_tokens: int, timeout: float = 600.0) -> Iterator[str]:
    """Yield pieces of `model`'s answer to `messages` from the server at `url` as they arrive."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "stream": True}
    try:
        with httpx.stream("POST", f"{url.rstrip('/')}/v1/chat/completions", json=body, timeout=timeout) as response:
            if response.status_code != 200:
                response.read()
                raise PixiuError(f"the server answered {response.status_code}: {_error_message(response.text)}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line.removeprefix("data: "))
                if "error" in chunk:
                    raise PixiuError(f"the server failed mid-answer: {chunk['error'].get('message')}")
                for choice in chunk["choices"]:
                    if choice["delta"].get("content"):
                        yield choice["delta"]["content"]
    except httpx.TransportError as exc:
        raise PixiuError(f"cannot reach a pixiu server at {url} ({exc}); start one with `pixiu serve`") from exc


def _error_message(text: str) -> str:
    """The message of an OpenAI-style error body, or the raw text."""
    try:
        return json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return text.strip()[:500]
