"""The generic teacher client and its cache, against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pixiu import PixiuError
from pixiu.teacher import Teacher, TeacherCache, cache_key


class FakeOpenAI(ThreadingHTTPServer):
    """A chat-completions endpoint echoing the prompt, answering the queued statuses first."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.statuses: list[int] = []


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        server: FakeOpenAI = self.server  # type: ignore[assignment]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.requests.append(body)
        status = server.statuses.pop(0) if server.statuses else 200
        payload = {"error": "no"} if status != 200 else {
            "choices": [{"message": {"role": "assistant", "content": "echo: " + body["messages"][1]["content"]}}]
        }
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    thread = threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.shutdown()
        fake.server_close()


def teacher(server: FakeOpenAI, cache: Path, **options: object) -> Teacher:
    url = f"http://127.0.0.1:{server.server_port}/v1"
    return Teacher(url, "m", TeacherCache(cache), system_prompt="sys", max_tokens=7, **options)  # type: ignore[arg-type]


def test_a_cached_answer_makes_no_call(server: FakeOpenAI, tmp_path: Path) -> None:
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


def test_503_is_retried_then_succeeds(server: FakeOpenAI, tmp_path: Path) -> None:
    waits: list[float] = []
    server.statuses = [503]
    client = teacher(server, tmp_path / "c.jsonl", sleep=waits.append)
    assert client.ask("hi") == "echo: hi" and client.calls == 2 and waits == [1]


def test_400_is_an_error_naming_the_url(server: FakeOpenAI, tmp_path: Path) -> None:
    server.statuses = [400]
    client = teacher(server, tmp_path / "c.jsonl", sleep=lambda seconds: None)
    with pytest.raises(PixiuError, match=f"teacher {client.url} answered HTTP 400"):
        client.ask("hi")
    assert client.calls == 1 and len(TeacherCache(tmp_path / "c.jsonl")) == 0
