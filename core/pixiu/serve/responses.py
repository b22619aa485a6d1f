"""OpenAI response objects for one request: whole answers, streamed chunks, and the server-sent event stream."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator

from pixiu.serve.engine import BASE
from pixiu.serve.generation import Generation
from pixiu.serve.postprocess import process_response

log = logging.getLogger("pixiu.serve")


class Reply:
    """Builds OpenAI response objects for one request."""

    def __init__(self, model: str, chat: bool):
        self.model, self.chat = model, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def whole(self, text: str, generation: Generation) -> dict:
        """A non-streamed response."""
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text}}
        else:
            choice = {"index": 0, "text": text, "logprobs": None}
        choice["finish_reason"] = generation.finish_reason
        return {**self._head(""), "choices": [choice], "usage": _usage(generation)}

    def chunk(self, text: str | None, finish_reason: str | None = None, *, first: bool = False) -> dict:
        """One streamed chunk with new text (None: no text) and, in the last one, the finish reason."""
        if self.chat:
            delta = {"role": "assistant", "content": ""} if first else ({"content": text} if text is not None else {})
            choice = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None}
        choice["finish_reason"] = finish_reason
        return {**self._head(".chunk" if self.chat else ""), "choices": [choice]}

    def usage_chunk(self, generation: Generation) -> dict:
        """The extra last chunk with token counts (`stream_options.include_usage`)."""
        return {**self._head(".chunk" if self.chat else ""), "choices": [], "usage": _usage(generation)}

    def _head(self, suffix: str) -> dict:
        """Fields every response object starts with."""
        kind = "chat.completion" if self.chat else "text_completion"
        return {"id": self.id, "object": kind + suffix, "created": self.created, "model": self.model}


def _usage(generation: Generation) -> dict:
    """OpenAI's token counts."""
    return {"prompt_tokens": generation.prompt_tokens, "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens}


async def stream_events(generation: Generation, reply: Reply, usage: bool) -> AsyncIterator[str]:
    """Server-sent events: a chunk per text piece, post-processing's addition, the finish, [DONE]."""
    if reply.chat:
        yield _sse(reply.chunk(None, first=True))
    sent = []
    async for piece in generation.pieces():
        sent.append(piece)
        yield _sse(reply.chunk(piece))
    if generation.finish_reason in ("error", "cancelled"):
        message = f"generation {generation.finish_reason}; see the server log"
        yield _sse({"error": {"message": message, "type": "server_error", "param": None, "code": None}})
        return
    if reply.model != BASE:
        text = "".join(sent)
        rewritten = process_response(reply.model, text)
        if rewritten.startswith(text):
            if len(rewritten) > len(text):
                yield _sse(reply.chunk(rewritten[len(text) :]))
        else:
            log.warning("process_response rewrote streamed text of %r; a stream only gets what is appended",
                        reply.model)
    yield _sse(reply.chunk(None, generation.finish_reason))
    if usage:
        yield _sse(reply.usage_chunk(generation))
    yield "data: [DONE]\n\n"


def _sse(data: dict) -> str:
    """One server-sent event."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
