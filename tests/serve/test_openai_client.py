"""The real `openai` client against a server on a loopback socket; a client that disconnects is cancelled."""

import asyncio
import time

import httpx
import openai
import pytest

from pixiu.serve.app import _collect_unless_disconnected
from pixiu.serve.server import background_server

from .helpers import PROMPTS


@pytest.fixture
def url(make_app, engine):
    with background_server(make_app(engine, max_tokens=1000)) as base_url:
        yield base_url


@pytest.fixture
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["base", "law", "medical", "zhihu"]


def test_chat_and_streaming_agree(client):
    messages = [{"role": "user", "content": PROMPTS[1]}]
    whole = client.chat.completions.create(model="zhihu", messages=messages, max_tokens=12)
    assert whole.choices[0].finish_reason in ("stop", "length") and whole.usage.completion_tokens > 0
    stream = client.chat.completions.create(model="zhihu", messages=messages, max_tokens=12, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 2 and "".join(pieces) == whole.choices[0].message.content


def test_text_completion(client):
    completion = client.completions.create(model="base", prompt="The capital of France is", max_tokens=5)
    assert completion.choices[0].text and completion.model == "base"


def test_unknown_model_raises_not_found(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="astrology", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.code == "model_not_found"


def test_a_client_that_disconnects_is_cancelled(url, engine):
    body = {"model": "medical", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
        next(response.iter_lines())  # the first event arrived: generation is running; now hang up
    deadline = time.monotonic() + 20
    while engine.stats()["requests"].get(("medical", "cancelled")) != 1:
        assert time.monotonic() < deadline, engine.stats()
        time.sleep(0.05)
    assert engine.stats()["generated_tokens"] < 1000 and engine.stats()["active"] == 0


def test_a_non_streaming_client_that_disconnects_is_cancelled(url, engine):
    body = {"model": "zhihu", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000}
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{url}/v1/chat/completions", json=body, timeout=0.3)
    deadline = time.monotonic() + 20
    while engine.stats()["requests"].get(("zhihu", "cancelled")) != 1:
        assert time.monotonic() < deadline, engine.stats()
        time.sleep(0.05)


def test_an_answer_collected_for_a_client_that_hung_up_is_none():
    class Endless:  # a generation that runs until it is cancelled
        async def collect(self) -> str:
            await asyncio.Event().wait()
            return "never"

    class HungUp:  # a request whose client has already closed the connection
        async def receive(self) -> dict:
            return {"type": "http.disconnect"}

    assert asyncio.run(_collect_unless_disconnected(HungUp(), Endless())) is None  # type: ignore[arg-type]
