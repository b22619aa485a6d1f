"""A fake teacher for the data-recipe tests: an OpenAI-compatible loopback endpoint whose answers a function of the
request decides, every request body recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pixiu.testing.loopback import ChatRequest, FakeOpenAI, completion, serving


class ScriptedTeacher(FakeOpenAI):
    """Answers `script(request body)`: the content, or (content, finish_reason); after `fail_after` requests (when
    set), answers HTTP 400 instead."""

    def __init__(self, script: Callable[[dict], str | tuple[str, str]]) -> None:
        super().__init__()
        self.script = script
        self.requests: list[dict] = []
        self.fail_after: int | None = None

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        """Record the body; the script's answer, or a 400 once `fail_after` requests were answered."""
        if self.fail_after is not None and len(self.requests) >= self.fail_after:
            return 400, {"error": "scripted failure"}
        self.requests.append(request.body)
        answer = self.script(request.body)
        content, finish_reason = answer if isinstance(answer, tuple) else (answer, "stop")
        body = completion(content)
        body["choices"][0]["finish_reason"] = finish_reason
        return 200, body


@contextmanager
def scripted_teacher(script: Callable[[dict], str | tuple[str, str]]) -> Iterator[ScriptedTeacher]:
    """A running `ScriptedTeacher`, shut down afterwards."""
    fake = ScriptedTeacher(script)
    with serving(fake):
        yield fake


def user_text(body: dict) -> str:
    """The last user message of a request body."""
    return next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
