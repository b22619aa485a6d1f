"""OpenAI response objects for one request: whole answers, streamed chunks, and the server-sent event stream."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from pydantic import BaseModel

from pixiu.serve.generation import Generation
from pixiu.serve.protocol import (
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChunkChoice,
    Completion,
    Delta,
    ErrorDetail,
    ErrorResponse,
    TextChoice,
    Usage,
)


class Reply:
    """Builds the typed OpenAI response objects of one request."""

    def __init__(self, model: str, chat: bool):
        self.model, self.chat = model, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def whole(self, text: str, generation: Generation) -> ChatCompletion | Completion:
        """A non-streamed response."""
        head = {"id": self.id, "created": self.created, "model": self.model, "usage": _usage(generation)}
        if self.chat:
            choice = ChatChoice(message=ChatMessage(content=text), finish_reason=generation.finish_reason)
            return ChatCompletion(**head, choices=[choice])
        return Completion(**head, choices=[TextChoice(text=text, finish_reason=generation.finish_reason)])

    def chunk(self, text: str | None, finish_reason: str | None = None, *,
              first: bool = False) -> ChatCompletionChunk | Completion:
        """One streamed chunk with new text (None: no text) and, in the last one, the finish reason."""
        head = {"id": self.id, "created": self.created, "model": self.model}
        if self.chat:
            delta = Delta(role="assistant", content="") if first else Delta(content=text)
            return ChatCompletionChunk(**head, choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)])
        return Completion(**head, choices=[TextChoice(text=text or "", finish_reason=finish_reason)])

    def usage_chunk(self, generation: Generation) -> ChatCompletionChunk | Completion:
        """The extra last chunk with token counts (`stream_options.include_usage`)."""
        kind = ChatCompletionChunk if self.chat else Completion
        return kind(id=self.id, created=self.created, model=self.model, choices=[], usage=_usage(generation))


def _usage(generation: Generation) -> Usage:
    """OpenAI's token counts."""
    return Usage(prompt_tokens=generation.prompt_tokens, completion_tokens=generation.completion_tokens,
                 total_tokens=generation.prompt_tokens + generation.completion_tokens)


async def stream_events(generation: Generation, reply: Reply, usage: bool) -> AsyncIterator[str]:
    """Server-sent events: a chunk per text piece (post-processing's addition included), the finish, [DONE]."""
    if reply.chat:
        yield _sse(reply.chunk(None, first=True))
    async for piece in generation.pieces():
        yield _sse(reply.chunk(piece))
    if generation.finish_reason in ("error", "cancelled"):
        message = f"generation {generation.finish_reason}; see the server log"
        yield _sse(ErrorResponse(error=ErrorDetail(message=message, type="server_error", param=None, code=None)))
        return
    yield _sse(reply.chunk(None, generation.finish_reason))
    if usage:
        yield _sse(reply.usage_chunk(generation))
    yield "data: [DONE]\n\n"


def _sse(model: BaseModel) -> str:
    """One server-sent event."""
    return f"data: {model.model_dump_json()}\n\n"

