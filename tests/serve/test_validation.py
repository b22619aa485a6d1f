"""Hostile request bodies: strict JSON types, plain error wording, lone surrogates, parameters pixiu refuses."""

import http.client
import json

import pytest

from pixiu.serve.server import background_server

from .helpers import PROMPTS, call

CHAT = {"model": "law", "messages": [{"role": "user", "content": PROMPTS[0]}], "max_tokens": 4}
TEXT = {"model": "law", "prompt": "hello", "max_tokens": 4}


def post(app, path, body):
    """POST `body` as JSON, NaN included (as Python's json writes it)."""
    return call(app, "POST", path, content=json.dumps(body), headers={"content-type": "application/json"})


def error_of(response):
    """(status, message, param) of an error response."""
    error = response.json()["error"]
    return response.status_code, error["message"], error["param"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/chat/completions",
            b'{"model": "law", "max_tokens": 2, "messages": [{"role": "user", "content": "\\ud800"}]}',
        ),
        ("/v1/completions", b'{"model": "law", "max_tokens": 2, "prompt": "a\\udfffb"}'),
    ],
)
def test_a_lone_surrogate_is_a_400_and_the_connection_stays_usable(make_app, engine, path, body):
    with background_server(make_app(engine)) as url:
        connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=30)
        connection.request("POST", path, body=body, headers={"content-type": "application/json"})
        response = connection.getresponse()
        error = json.loads(response.read())["error"]
        assert response.status == 400 and "lone UTF-16 surrogate" in error["message"]
        socket = connection.sock
        connection.request(
            "POST", "/v1/completions", body=json.dumps(TEXT), headers={"content-type": "application/json"}
        )
        again = connection.getresponse()
        assert again.status == 200 and json.loads(again.read())["choices"][0]["text"] is not None
        assert connection.sock is socket  # the same keep-alive connection answered
        connection.close()


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"stream": "yes"}, "stream", "stream: give true or false, not 'yes'"),
        ({"max_tokens": True}, "max_tokens", "max_tokens: give a whole number, not true"),
        ({"temperature": "0.5"}, "temperature", "temperature: give a number"),
        ({"temperature": float("nan")}, "temperature", "temperature: give a finite number, not nan"),
        ({"temperature": 3}, "temperature", "temperature: give a number at most 2"),
        (
            {"messages": [{"role": "user", "content": None}]},
            "messages.0.content",
            "messages.0.content: give the message text as a string or a list of text parts, not null",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            "messages.0.content",
            "this server reads text parts only",
        ),
        ({"messages": [{"role": "user"}]}, "messages.0.content", "messages.0.content: is required"),
    ],
)
def test_loose_types_are_refused_in_plain_words(app, extra, param, words):
    status, message, got = error_of(post(app, "/v1/chat/completions", {**CHAT, **extra}))
    assert status == 400 and got == param and words in message
    assert "Input should" not in message and "≤" not in message and ".str" not in message


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tool calling is not supported"),
        ({"tool_choice": "auto"}, "tool_choice", "tool calling is not supported"),
        ({"response_format": {"type": "json_object"}}, "response_format.type", "plain text only"),
        ({"logprobs": True, "stream": True}, "logprobs", "not available when streaming"),
        ({"top_logprobs": 2}, "top_logprobs", 'needs "logprobs": true'),
        ({"logit_bias": {"abc": 1}}, "logit_bias.abc", "token ids"),
        ({"logit_bias": {"99999999": 1}}, "logit_bias", "outside the vocabulary"),
        ({"presence_penalty": 3}, "presence_penalty", "at most 2"),
        ({"made_up": 1}, "made_up", "pixiu does not implement this parameter"),
    ],
)
def test_unsupported_parameters_are_a_400_naming_them(app, extra, param, words):
    status, message, got = error_of(call(app, "POST", "/v1/chat/completions", json={**CHAT, **extra}))
    assert status == 400 and got == param and words in message


def test_text_response_format_and_user_are_accepted(app):
    response = call(
        app, "POST", "/v1/chat/completions", json={**CHAT, "response_format": {"type": "text"}, "user": "u"}
    )
    assert response.status_code == 200


def test_chat_logprobs_match_the_answer(app, tokenizer):
    body = call(app, "POST", "/v1/chat/completions", json={**CHAT, "logprobs": True, "top_logprobs": 3}).json()
    content = body["choices"][0]["logprobs"]["content"]
    assert len(content) == body["usage"]["completion_tokens"]
    assert "".join(entry["token"] for entry in content) == body["choices"][0]["message"]["content"]
    for entry in content:  # greedy: the chosen token is the most likely one
        assert len(entry["top_logprobs"]) == 3 and entry["logprob"] <= 0
        assert entry["top_logprobs"][0]["logprob"] == pytest.approx(entry["logprob"])


def test_text_logprobs_and_no_logprobs_by_default(app):
    body = call(app, "POST", "/v1/completions", json={**TEXT, "logprobs": 2}).json()
    logprobs = body["choices"][0]["logprobs"]
    assert len(logprobs["tokens"]) == len(logprobs["token_logprobs"]) == body["usage"]["completion_tokens"]
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"]) and logprobs["text_offset"][0] == 0
    plain = call(app, "POST", "/v1/completions", json=TEXT).json()
    assert plain["choices"][0]["logprobs"] is None


def test_logit_bias_forces_a_token(app, tokenizer):
    token = tokenizer(" banana", add_special_tokens=False)["input_ids"][0]
    body = call(app, "POST", "/v1/completions", json={**TEXT, "logit_bias": {str(token): 100}}).json()
    assert body["choices"][0]["text"] == tokenizer.decode([token] * 4)
