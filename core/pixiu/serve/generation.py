"""One request's run on the engine, seen from asyncio: text pieces as they are generated, then how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from starlette.concurrency import run_in_threadpool

from pixiu.serve.engine import Engine
from pixiu.serve.postprocess import count_tokens, postprocess, streamed_addition
from pixiu.serve.request import SamplingParams
from pixiu.serve.sampler import TokenLogprobs
from pixiu.serve.text import TextStream


class Generation:
    """Submit a request to the engine and read its answer incrementally; cancels it if the reader goes away.

    Chat answers (`chat`) are post-processed here and nowhere else (`process_response`), and what the
    rewrite adds is counted in `completion_tokens`; raw text completions are never rewritten. Raises `UnknownModel` or
    `QueueFull` from the constructor, as `Engine.submit` does. `on_finish(generation)` is called on the
    engine thread when the engine ends the request, with `first_token_s` and `latency_s` set.
    """

    def __init__(
        self,
        engine: Engine,
        tokenizer,
        model: str,
        prompt_ids: list[int],
        sampling: SamplingParams,
        stop: list[str],
        on_finish: Callable[[Generation], None] = lambda generation: None,
        *,
        chat: bool = True,
    ):
        loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[tuple[int | None, str | None]] = asyncio.Queue()
        submitted = time.perf_counter()
        self.first_token_s: float | None = None
        """Seconds from submission to the first generated token (None if none came)."""
        self.latency_s: float | None = None
        """Seconds from submission until the engine ended the request."""

        def sink(token: int | None, finish: str | None) -> None:
            if token is not None and self.first_token_s is None:
                self.first_token_s = time.perf_counter() - submitted
            if finish is not None:
                self.latency_s = time.perf_counter() - submitted
                on_finish(self)
            with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody is listening any more
                loop.call_soon_threadsafe(self._events.put_nowait, (token, finish))

        self.engine = engine
        self.model = model
        self.chat = chat
        self.prompt_tokens = len(prompt_ids)
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.text = TextStream(tokenizer, stop)
        self.request = engine.submit(model, prompt_ids, sampling, sink)

    async def pieces(self) -> AsyncIterator[str]:
        """Yield new text as it becomes final, then what post-processing appends; then `finish_reason` is set.

        It is "stop" or "length" as in OpenAI's API, "error" when generation failed, or "cancelled"
        when the engine shut down. Text already yielded cannot change, so a rewrite that does more than
        append reaches non-streamed answers (`collect`) only.
        """
        sent = []
        async for piece in self._generated():
            sent.append(piece)
            yield piece
        if self.finish_reason in ("error", "cancelled"):
            return
        text = "".join(sent)
        addition = streamed_addition(text, await self._postprocess(text), adapter=self.model)
        if addition:
            yield addition

    async def collect(self) -> str:
        """The whole answer, post-processed (unless generation failed or was cancelled)."""
        text = "".join([piece async for piece in self._generated()])
        return text if self.finish_reason in ("error", "cancelled") else await self._postprocess(text)

    def logprobs(self) -> list[TokenLogprobs]:
        """Logprobs of the answer's tokens (those counted in `completion_tokens`), once it has finished."""
        return self.request.logprobs[: self.completion_tokens]

    async def _postprocess(self, text: str) -> str:
        """The one place answers are post-processed: plugins' `process_response` on chat answers, off the event
        loop; the tokens of what it adds (or of the whole rewrite) join `completion_tokens`."""
        if not self.chat:
            return text
        assert self.finish_reason is not None, "post-processing runs once the answer has ended"
        answer = await postprocess(self.request.adapter, text, finish_reason=self.finish_reason)
        if answer.startswith(text):
            if len(answer) > len(text):
                self.completion_tokens += await run_in_threadpool(
                    count_tokens, self.text.tokenizer, answer[len(text) :]
                )
        else:
            self.completion_tokens = await run_in_threadpool(count_tokens, self.text.tokenizer, answer)
        return answer

    async def _generated(self) -> AsyncIterator[str]:
        """The generated text, piece by piece as it becomes final; sets `finish_reason` at the end."""
        try:
            while True:
                token, finish = await self._events.get()
                if finish is not None:
                    self.finish_reason = "stop" if self.text.stopped else finish
                    tail = self.text.finish()
                    if tail:
                        yield tail
                    return
                if self.text.stopped:
                    continue
                assert token is not None, "the engine sends a token or a finish reason"
                self.completion_tokens += 1
                piece = self.text.push(token)
                if self.text.stopped:
                    self.engine.cancel(self.request, "stop")  # a stop string ended the answer
                if piece:
                    yield piece
        finally:
            self.engine.cancel(self.request)  # does nothing once finished; otherwise the reader went away
