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
    ChatLogprobs,
    ChatMessage,
    ChunkChoice,
    Completion,
    Delta,
    ErrorDetail,
    ErrorResponse,
    TextChoice,
    TextLogprobs,
    TokenLogprob,
    TopLogprob,
    Usage,
)
from pixiu.serve.sampler import TokenLogprobs


class Reply:
    """Builds the typed OpenAI response objects of one request."""

    def __init__(self, model: str, chat: bool):
        self.model, self.chat = model, chat
        self.id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def whole(self, text: str, generation: Generation, tokenizer, logprobs: bool) -> ChatCompletion | Completion:
        """A non-streamed response, with the answer's logprobs when `logprobs`."""
        head = {"id": self.id, "created": self.created, "model": self.model, "usage": _usage(generation)}
        entries = generation.logprobs() if logprobs else None
        if self.chat:
            choice = ChatChoice(
                message=ChatMessage(content=text),
                finish_reason=generation.finish_reason,
                logprobs=None if entries is None else chat_logprobs(tokenizer, entries),
            )
            return ChatCompletion(**head, choices=[choice])
        text_choice = TextChoice(
            text=text,
            finish_reason=generation.finish_reason,
            logprobs=None if entries is None else text_logprobs(tokenizer, entries),
        )
        return Completion(**head, choices=[text_choice])

    def chunk(
        self, text: str | None, finish_reason: str | None = None, *, first: bool = False
    ) -> ChatCompletionChunk | Completion:
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


def chat_logprobs(tokenizer, entries: list[TokenLogprobs]) -> ChatLogprobs:
    """Chat logprobs: each token as text, its logprob, its UTF-8 bytes and its top alternatives."""

    def top(token: int, logprob: float) -> TopLogprob:
        text = tokenizer.decode([token])
        return TopLogprob(token=text, logprob=logprob, bytes=list(text.encode("utf-8")))

    content = [
        TokenLogprob(**top(e.token, e.logprob).model_dump(), top_logprobs=[top(t, lp) for t, lp in e.top])
        for e in entries
    ]
    return ChatLogprobs(content=content)


def text_logprobs(tokenizer, entries: list[TokenLogprobs]) -> TextLogprobs:
    """Text-completion logprobs: tokens, their logprobs, top alternatives by text, and character offsets."""
    tokens = [tokenizer.decode([e.token]) for e in entries]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    top = [{tokenizer.decode([t]): lp for t, lp in e.top} for e in entries]
    return TextLogprobs(
        tokens=tokens, token_logprobs=[e.logprob for e in entries], top_logprobs=top, text_offset=offsets
    )


def _usage(generation: Generation) -> Usage:
    """OpenAI's token counts."""
    return Usage(
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        total_tokens=generation.prompt_tokens + generation.completion_tokens,
    )


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
