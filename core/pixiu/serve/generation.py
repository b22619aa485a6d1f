"""One request's run on the engine, seen from asyncio: text pieces as they are generated, then how it ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from pixiu.serve.engine import Engine, Sampling
from pixiu.serve.text import TextStream


class Generation:
    """Submit a request to the engine and read its answer incrementally; cancels it if the reader goes away.

    Raises `UnknownModel` or `QueueFull` from the constructor, as `Engine.submit` does.
    """

    def __init__(self, engine: Engine, tokenizer, model: str, prompt_ids: list[int], sampling: Sampling,
                 stop: list[str]):
        loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[tuple[int | None, str | None]] = asyncio.Queue()

        def sink(token: int | None, finish: str | None) -> None:
            try:
                loop.call_soon_threadsafe(self._events.put_nowait, (token, finish))
            except RuntimeError:  # the event loop is closed: nobody is listening any more
                pass

        self.engine = engine
        self.model = model
        self.prompt_tokens = len(prompt_ids)
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self.text = TextStream(tokenizer, stop)
        self.request = engine.submit(model, prompt_ids, sampling, sink)

    async def pieces(self) -> AsyncIterator[str]:
        """Yield new text as it becomes final; then `finish_reason` is set.

        It is "stop" or "length" as in OpenAI's API, "error" when generation failed, or "cancelled"
        when the engine shut down.
        """
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
                self.completion_tokens += 1
                piece = self.text.push(token)
                if self.text.stopped:
                    self.engine.cancel(self.request)  # a stop string ended the answer
                if piece:
                    yield piece
        finally:
            self.engine.cancel(self.request)  # does nothing once finished; otherwise the reader went away

    async def collect(self) -> str:
        """The whole answer."""
        return "".join([piece async for piece in self.pieces()])
