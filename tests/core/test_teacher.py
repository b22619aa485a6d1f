"""The generic teacher client and its cache, against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixiu import PixiuError
from pixiu.teacher import Answer, Sampling, Teacher, TeacherCache, cache_key
from pixiu.testing.loopback import ChatRequest, FakeOpenAI, completion, serving
from scripted_teacher import scripted_teacher, user_text


class EchoServer(FakeOpenAI):
    """A chat-completions endpoint echoing the prompt, answering the queued statuses first."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.statuses: list[int] = []

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        """Record the body; a queued error status, else "echo: " and the user message."""
        self.requests.append(request.body)
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return status, {"error": "no"}
        return 200, completion("echo: " + request.body["messages"][1]["content"])


@pytest.fixture
def server() -> Iterator[EchoServer]:
    fake = EchoServer()
    with serving(fake):
        yield fake


def teacher(server: EchoServer, cache: Path, **options: object) -> Teacher:
    return Teacher(server.url, "m", TeacherCache(cache), system_prompt="sys", max_tokens=7, **options)  # type: ignore[arg-type]


def test_a_cached_answer_makes_no_call(server: EchoServer, tmp_path: Path) -> None:
    first = teacher(server, tmp_path / "c.jsonl")
    assert first.ask("hi") == "echo: hi" and first.calls == 1
    body = server.requests[0]
    assert body["messages"][0] == {"role": "system", "content": "sys"} and body["max_tokens"] == 7
    again = teacher(server, tmp_path / "c.jsonl")
    assert again.ask("hi") == "echo: hi" and again.calls == 0 and len(server.requests) == 1
    assert cache_key("m", "sys", "hi") != cache_key("m", "other", "hi")


def test_a_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    TeacherCache(path).put("k", "answer", "m")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn by a cra')
    cache = TeacherCache(path)
    assert len(cache) == 1 and cache.get("k") == "answer" and cache.get("torn by a cra") is None


def test_503_is_retried_then_succeeds(server: EchoServer, tmp_path: Path) -> None:
    waits: list[float] = []
    server.statuses = [503]
    client = teacher(server, tmp_path / "c.jsonl", sleep=waits.append)
    assert client.ask("hi") == "echo: hi" and client.calls == 2 and waits == [1]


def test_400_is_an_error_naming_the_url(server: EchoServer, tmp_path: Path) -> None:
    server.statuses = [400]
    client = teacher(server, tmp_path / "c.jsonl", sleep=lambda seconds: None)
    with pytest.raises(PixiuError, match=f"teacher {client.url} answered HTTP 400"):
        client.ask("hi")
    assert client.calls == 1 and len(TeacherCache(tmp_path / "c.jsonl")) == 0


def test_chat_sends_the_conversation_and_caches_each_sample(server: EchoServer, tmp_path: Path) -> None:
    conversation = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    client = teacher(server, tmp_path / "c.jsonl")
    first = client.chat(conversation, Sampling(temperature=0.8, top_p=0.9, sample=0))
    second = client.chat(conversation, Sampling(temperature=0.8, top_p=0.9, sample=1))
    assert first == second == "echo: hi" and client.calls == 2, "another sample index is another request"
    body = server.requests[0]
    assert body["messages"] == conversation and body["temperature"] == 0.8 and body["top_p"] == 0.9
    teacher(server, tmp_path / "greedy.jsonl").chat(conversation)
    assert server.requests[2]["temperature"] == 0 and "top_p" not in server.requests[2]
    again = teacher(server, tmp_path / "c.jsonl")
    assert again.chat(conversation, Sampling(temperature=0.8, top_p=0.9, sample=1)) == "echo: hi" and again.calls == 0
    assert again.ask("hi") == "echo: hi" and again.calls == 1, "ask keeps its own keys (system prompt 'sys')"


def test_an_answer_cut_at_the_token_limit_is_marked_truncated_in_the_cache(tmp_path: Path) -> None:
    with scripted_teacher(lambda body: ("cut sho", "length") if "long" in user_text(body) else "done") as fake:
        client = Teacher(fake.url, "m", TeacherCache(tmp_path / "c.jsonl"), max_tokens=3)
        assert client.reply([{"role": "user", "content": "a long one"}]) == Answer("cut sho", truncated=True)
        assert client.reply([{"role": "user", "content": "short"}]) == Answer("done", truncated=False)
    again = Teacher(fake.url, "m", TeacherCache(tmp_path / "c.jsonl"), max_tokens=3)
    assert again.reply([{"role": "user", "content": "a long one"}]).truncated and again.calls == 0


def test_an_unreachable_teacher_is_named_with_how_to_resume(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = Teacher(f"http://127.0.0.1:{port}/v1", "m", TeacherCache(tmp_path / "c.jsonl"), max_tokens=7)
    client.sleep = lambda seconds: None
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with pytest.raises(PixiuError, match=f"cannot reach teacher {url}.*running the same command again resumes"):
        client.chat([{"role": "user", "content": "hi"}])
    assert client.calls == 4, "three retries after the first attempt"
