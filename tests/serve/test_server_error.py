"""An unexpected exception in a route is an OpenAI-style 500, logged once, and the keep-alive connection survives."""

import asyncio
import http.client
import json
import logging

import pixiu.serve.app
from pixiu.serve.http import ServerError
from pixiu.serve.server import background_server

TEXT = {"model": "law", "prompt": "hello", "max_tokens": 4}


def boom(*args, **kwargs):
    """Stand in for a helper a route calls, failing the way a bug would."""
    raise RuntimeError("a bug in a route")


def test_a_500_answers_json_and_the_same_connection_answers_the_next_request(make_app, engine, monkeypatch, caplog):
    monkeypatch.setattr(pixiu.serve.app, "model_card", boom)  # GET /v1/models now raises
    caplog.set_level(logging.ERROR)
    with background_server(make_app(engine)) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        connection.request("GET", "/v1/models")
        response = connection.getresponse()
        error = json.loads(response.read())["error"]
        assert response.status == 500
        assert error == {
            "message": "internal server error; see the server log",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        socket = connection.sock
        connection.request(
            "POST", "/v1/completions", body=json.dumps(TEXT), headers={"content-type": "application/json"}
        )
        again = connection.getresponse()
        assert again.status == 200 and json.loads(again.read())["choices"][0]["text"] is not None
        assert connection.sock is socket  # the same keep-alive connection answered
        connection.close()
    logged = [r for r in caplog.records if r.exc_info and "a bug in a route" in str(r.exc_info[1])]
    assert len(logged) == 1 and "GET /v1/models" in logged[0].getMessage()


def test_an_error_after_the_response_started_is_logged_and_not_raised(caplog):
    async def half_sent(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        raise RuntimeError("a bug mid-stream")

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": []}
    asyncio.run(ServerError(half_sent)(scope, receive, send))  # does not raise
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]  # no second start
    assert [r.getMessage() for r in caplog.records] == ["unhandled error in POST /v1/chat/completions"]
