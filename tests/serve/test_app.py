"""The HTTP API in process: OpenAI-shaped answers, streaming, 4xx errors with OpenAI bodies, admin, hooks, metrics."""

import json
import shutil
import threading
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pixiu import hookimpl
from pixiu.registry import register_adapter
from pixiu.serve.request import SamplingParams

from .helpers import ADMIN_TOKEN, PROMPTS, call, chat_ids, eventually

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def chat_body(model="law", content=PROMPTS[0], **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 10, **extra}


def events(response):
    """The JSON payloads of a server-sent event stream, and whether it ended with [DONE]."""
    lines = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"], lines[-1] == "[DONE]"


def test_models_lists_base_and_adapters(app, tiny_model_dir):
    body = call(app, "GET", "/v1/models").json()
    assert [m["id"] for m in body["data"]] == ["base", "law", "medical", "zhihu"]
    assert body["data"][0]["root"] == str(tiny_model_dir) and body["data"][1]["parent"] == "base"
    assert call(app, "GET", "/v1/models/law").json()["id"] == "law"
    assert call(app, "GET", "/v1/models/nope").status_code == 404


def test_chat_answer_is_the_adapters_solo_answer(app, tokenizer, reference):
    response = call(app, "POST", "/v1/chat/completions", json=chat_body())
    assert response.status_code == 200
    body = response.json()
    tokens, _ = reference("law", chat_ids(tokenizer, PROMPTS[0]), 10)
    assert body["object"] == "chat.completion" and body["model"] == "law"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": tokenizer.decode(tokens, skip_special_tokens=True),
    }
    assert body["choices"][0]["finish_reason"] == ("length" if len(tokens) == 10 else "stop")
    assert body["usage"]["completion_tokens"] == len(tokens)
    assert body["usage"]["prompt_tokens"] == len(chat_ids(tokenizer, PROMPTS[0]))


def test_streamed_chat_equals_the_whole_answer(app):
    whole = call(app, "POST", "/v1/chat/completions", json=chat_body("zhihu")).json()
    assert whole["choices"][0]["message"]["content"]
    response = call(
        app,
        "POST",
        "/v1/chat/completions",
        json=chat_body("zhihu", stream=True, stream_options={"include_usage": True}),
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    chunks, done = events(response)
    assert done and chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert chunks[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]


def test_text_completions_plain_and_streamed(app, tokenizer, reference):
    body = {"model": "zhihu", "prompt": "The quick brown fox", "max_tokens": 6}
    whole = call(app, "POST", "/v1/completions", json=body).json()
    tokens, _ = reference("zhihu", tokenizer("The quick brown fox")["input_ids"], 6)
    assert whole["object"] == "text_completion"
    assert whole["choices"][0]["text"] == tokenizer.decode(tokens, skip_special_tokens=True)
    chunks, done = events(call(app, "POST", "/v1/completions", json={**body, "stream": True}))
    assert done and "".join(c["choices"][0]["text"] for c in chunks) == whole["choices"][0]["text"]


def test_stop_strings_cut_the_answer(app):
    full = call(app, "POST", "/v1/chat/completions", json=chat_body(max_tokens=20)).json()
    text = full["choices"][0]["message"]["content"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    cut = call(app, "POST", "/v1/chat/completions", json=chat_body(max_tokens=20, stop=[stop])).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.index(stop)]
    assert cut["choices"][0]["finish_reason"] == "stop"


def test_unknown_model_is_an_openai_404(app):
    response = call(app, "POST", "/v1/chat/completions", json=chat_body("astrology"))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model" and "law" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "param"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400, None),
        ({"json": ["a", "list"]}, 400, None),
        ({"json": {"model": "law"}}, 400, "messages"),
        ({"json": {"model": "law", "messages": []}}, 400, "messages"),
        ({"json": chat_body(n=2)}, 400, "n"),
        ({"json": chat_body(temperature=-1)}, 400, "temperature"),
        ({"json": chat_body(max_tokens=0)}, 400, "max_tokens"),
        ({"json": chat_body(max_tokens=10**9)}, 400, "max_tokens"),
        ({"json": {"model": "law", "messages": [{"role": "tool", "content": "x"}]}}, 400, "messages.0.role"),
        ({"json": {"model": "law", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}}, 400, None),
        ({"json": chat_body(content="长" * 1000)}, 400, "messages"),
        ({"json": chat_body(stop=["a", "b", "c", "d", "e"])}, 400, "stop"),
        ({"json": chat_body(content="x" * 70_000)}, 413, None),
    ],
)
def test_bad_requests_are_4xx_with_openai_bodies(app, request_kwargs, status, param):
    response = call(app, "POST", "/v1/chat/completions", **request_kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and (param is None or error["param"] == param)


def test_other_bad_requests(app):
    assert call(app, "POST", "/v1/completions", json={"model": "law", "prompt": ["a", "b"]}).status_code == 400
    assert call(app, "POST", "/v1/completions", json={"model": "law", "prompt": ""}).status_code == 400
    assert call(app, "POST", "/v1/completions", json={"model": "law", "prompt": "x", "seed": 2**70}).status_code == 400
    missing = call(app, "GET", "/v1/nothing-here")
    assert missing.status_code == 404 and "error" in missing.json()
    assert call(app, "GET", "/v1/chat/completions").status_code == 405


def test_full_queue_is_429_with_retry_after(make_engine, make_app, tokenizer):
    engine = make_engine(max_waiting=1)  # not started, so the queue stays full
    engine.submit("base", chat_ids(tokenizer, "hi"), SamplingParams(max_tokens=2), lambda token, finish: None)
    app = make_app(engine)
    response = call(app, "POST", "/v1/chat/completions", json=chat_body())
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "queue_full"
    assert call(app, "GET", "/health").status_code == 503  # the engine thread is not running


def test_health_and_metrics(app):
    call(app, "POST", "/v1/chat/completions", json=chat_body("law", max_tokens=3))
    call(app, "POST", "/v1/chat/completions", json=chat_body("base", max_tokens=3))
    health = call(app, "GET", "/health").json()
    assert health["status"] == "ok" and health["adapters"] == ["law", "medical", "zhihu"]
    response = call(app, "GET", "/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    law = (("model", "law"),)
    finished = [
        v for (name, labels), v in samples.items() if name == "pixiu_requests_total" and ("model", "law") in labels
    ]
    assert finished == [1.0]
    assert samples[("pixiu_adapters_loaded", ())] == 3 and samples[("pixiu_queue_depth", ())] == 0
    assert samples[("pixiu_generated_tokens_total", ())] >= 1 and samples[("pixiu_prompt_tokens_total", ())] > 0
    assert "pixiu_tokens_per_second" in families and samples[("pixiu_requests_rejected_total", ())] == 0
    for histogram in ("pixiu_time_to_first_token_seconds", "pixiu_request_latency_seconds"):
        assert families[histogram].type == "histogram"
        for model in ("law", "base"):
            assert samples[(f"{histogram}_count", (("model", model),))] == 1, (histogram, model)
        assert 0 < samples[(f"{histogram}_sum", law)] < 30
        assert samples[(f"{histogram}_bucket", (("le", "+Inf"), ("model", "law")))] == 1
    ttft, latency = (samples[(f"pixiu_{name}_seconds_sum", law)] for name in ("time_to_first_token", "request_latency"))
    assert ttft <= latency


def test_each_app_has_its_own_metrics(make_app, engine):
    first, second = make_app(engine), make_app(engine)
    call(first, "POST", "/v1/chat/completions", json=chat_body("law", max_tokens=2))
    count = "pixiu_request_latency_seconds_count"
    assert f'{count}{{model="law"}} 1.0' in call(first, "GET", "/metrics").text
    assert count not in call(second, "GET", "/metrics").text


HOOK_CALLS: list[tuple[str, str, bool]] = []
"""(domain, adapter, on the main thread?) of each `Disclaimer.process_response` call."""


class Disclaimer:
    """A vertical's post-processing: zhihu answers get a disclaimer; records where and with what it ran.

    Written against hook API 1.1: it takes no `finish_reason`, and must keep working as hooks gain arguments.
    """

    @staticmethod
    @hookimpl
    def process_response(domain, text, adapter):
        HOOK_CALLS.append((domain, adapter, threading.current_thread() is threading.main_thread()))
        return text + "\n(仅供参考)" if domain == "zhihu" else None


def test_process_response_hook_rewrites_answers(app, register_plugin):
    HOOK_CALLS.clear()
    register_plugin(Disclaimer, "disclaimer")
    plain = call(app, "POST", "/v1/chat/completions", json=chat_body("zhihu")).json()
    content = plain["choices"][0]["message"]["content"]
    assert content.endswith("\n(仅供参考)") and len(content) > len("\n(仅供参考)")
    assert content.count("(仅供参考)") == 1  # applied once, not once per layer
    chunks, _ = events(call(app, "POST", "/v1/chat/completions", json=chat_body("zhihu", stream=True)))
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == plain["choices"][0]["message"]["content"]
    law = call(app, "POST", "/v1/chat/completions", json=chat_body("law")).json()
    assert "仅供参考" not in law["choices"][0]["message"]["content"]
    call(app, "POST", "/v1/chat/completions", json=chat_body("base"))
    # once per answer, never for the base, and in a worker thread (the event loop runs in the main thread here)
    assert HOOK_CALLS == [("zhihu", "zhihu", False), ("zhihu", "zhihu", False), ("law", "law", False)]


def test_the_medical_adapter_keeps_its_disclaimer_under_any_name(
    app, adapter_dirs, tiny_model_dir, pixiu_home, register_plugin
):
    from pixiu_medical import plugin
    from pixiu_medical.safety import DISCLAIMER

    register_plugin(SimpleNamespace(process_response=plugin.process_response), "medical-safety")  # that hook only
    register_adapter("med-v2", "medical", adapter_dirs["medical"], str(tiny_model_dir), {})
    assert call(app, "POST", "/v1/adapters", json={"name": "med-v2"}, headers=ADMIN).status_code == 200
    whole = call(app, "POST", "/v1/chat/completions", json=chat_body("med-v2")).json()
    assert whole["choices"][0]["message"]["content"].endswith(DISCLAIMER)
    chunks, _ = events(call(app, "POST", "/v1/chat/completions", json=chat_body("med-v2", stream=True)))
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks).endswith(DISCLAIMER)
    run = pixiu_home / "runs" / "medical-7"  # not registered: its pixiu_run.yaml tells the domain
    shutil.copytree(adapter_dirs["medical"], run)
    (run / "pixiu_run.yaml").write_text("status: finished\ndomain: medical\n", encoding="utf-8")
    bare = pixiu_home / "runs" / "bare"  # made elsewhere: unknown domain
    shutil.copytree(adapter_dirs["medical"], bare)
    for name, path, disclaimed in [("clinic", "runs/medical-7", True), ("mystery", "runs/bare", False)]:
        loaded = call(app, "POST", "/v1/adapters", json={"name": name, "path": path}, headers=ADMIN)
        assert loaded.status_code == 200, loaded.text
        answer = call(app, "POST", "/v1/chat/completions", json=chat_body(name)).json()["choices"][0]["message"]
        assert answer["content"].endswith(DISCLAIMER) is disclaimed, name
    assert app.state.server.engine.adapters.loaded()["mystery"].domain is None
    law = call(app, "POST", "/v1/chat/completions", json=chat_body("law")).json()["choices"][0]["message"]
    assert DISCLAIMER not in law["content"]


def test_admin_is_off_without_a_token(make_app, engine):
    response = call(make_app(engine, admin_token=None), "DELETE", "/v1/adapters/law", headers=ADMIN)
    assert response.status_code == 403 and "PIXIU_ADMIN_TOKEN" in response.json()["error"]["message"]
    assert "law" in engine.adapters.loaded()


def test_admin_needs_the_right_token(app):
    assert call(app, "DELETE", "/v1/adapters/law").status_code == 401
    assert call(app, "DELETE", "/v1/adapters/law", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_hot_load_by_registry_name_and_unload(app, adapter_dirs, tiny_model_dir):
    register_adapter("legal", "law", adapter_dirs["law"], str(tiny_model_dir), {})
    response = call(app, "POST", "/v1/adapters", json={"name": "legal"}, headers=ADMIN)
    assert response.status_code == 200 and response.json()["id"] == "legal" and response.json()["rank"] == 8
    assert "legal" in [m["id"] for m in call(app, "GET", "/v1/models").json()["data"]]
    same = call(app, "POST", "/v1/chat/completions", json=chat_body("legal")).json()["choices"][0]["message"]
    assert same == call(app, "POST", "/v1/chat/completions", json=chat_body("law")).json()["choices"][0]["message"]
    assert call(app, "DELETE", "/v1/adapters/legal", headers=ADMIN).json()["deleted"] is True
    assert call(app, "POST", "/v1/chat/completions", json=chat_body("legal")).status_code == 404
    assert call(app, "DELETE", "/v1/adapters/legal", headers=ADMIN).status_code == 404
    missing = call(app, "POST", "/v1/adapters", json={"name": "unregistered"}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "adapter_not_found"
    register_adapter("other", "law", adapter_dirs["law"], "some/other-base", {})
    elsewhere = call(app, "POST", "/v1/adapters", json={"name": "other"}, headers=ADMIN)
    assert elsewhere.status_code == 400 and "trained on some/other-base" in elsewhere.json()["error"]["message"]


def test_hot_load_by_path_stays_inside_pixiu_home(app, adapter_dirs, pixiu_home, tmp_path):
    inside = pixiu_home / "runs" / "medical-1"
    shutil.copytree(adapter_dirs["medical"], inside)
    loaded = call(app, "POST", "/v1/adapters", json={"name": "med2", "path": "runs/medical-1"}, headers=ADMIN)
    assert loaded.status_code == 200 and loaded.json()["root"] == str(inside.resolve())
    (pixiu_home / "runs" / "escape").symlink_to(adapter_dirs["law"])
    for path in ["../outside", str(adapter_dirs["law"]), "runs/../../x", "runs/escape", "/etc"]:
        response = call(app, "POST", "/v1/adapters", json={"name": "x", "path": path}, headers=ADMIN)
        assert response.status_code == 403, path
    (pixiu_home / "runs" / "empty").mkdir()
    broken = call(app, "POST", "/v1/adapters", json={"name": "x", "path": "runs/empty"}, headers=ADMIN)
    assert broken.status_code == 400 and "adapter_config.json" in broken.json()["error"]["message"]
    nul = call(app, "POST", "/v1/adapters", json={"name": "x", "path": "runs/\u0000"}, headers=ADMIN)
    assert nul.status_code == 400
    bad_name = call(app, "POST", "/v1/adapters", json={"name": "../x", "path": "runs/medical-1"}, headers=ADMIN)
    assert bad_name.status_code == 400


def test_an_answer_ended_by_a_stop_string_counts_as_stop(app, engine):
    full = call(app, "POST", "/v1/chat/completions", json=chat_body(max_tokens=20)).json()
    text = full["choices"][0]["message"]["content"]
    stop = text[len(text) // 2 : len(text) // 2 + 2]
    for stream in (False, True):
        call(app, "POST", "/v1/chat/completions", json=chat_body(max_tokens=20, stop=[stop], stream=stream))
    eventually(lambda: engine.stats()["requests"].get(("law", "stop"), 0) >= 2)
    assert ("law", "cancelled") not in engine.stats()["requests"]
    metrics = call(app, "GET", "/metrics").text
    assert 'pixiu_requests_total{finish_reason="stop",model="law"} 2.0' in metrics


def test_prompts_are_tokenised_off_the_event_loop(make_engine, tokenizer, tiny_model_dir):
    from pixiu.serve.app import build_app
    from pixiu.serve.state import Limits

    on_loop = []

    class Spy:
        """The tokenizer, noting whether each call ran on the event loop's (main) thread."""

        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, *args, **kwargs):
            on_loop.append(threading.current_thread() is threading.main_thread())
            return tokenizer(*args, **kwargs)

    app = build_app(
        make_engine().start(), Spy(), base=str(tiny_model_dir), limits=Limits(context=2048), admin_token=None
    )
    assert call(app, "POST", "/v1/chat/completions", json=chat_body()).status_code == 200
    assert (
        call(app, "POST", "/v1/completions", json={"model": "law", "prompt": "hi", "max_tokens": 2}).status_code == 200
    )
    assert on_loop == [False, False]


def test_an_adapter_trained_on_another_base_is_refused_unless_forced(app, adapter_dirs, pixiu_home):
    import json as json_module

    runs = pixiu_home / "runs"
    peft_only, pixiu_run = runs / "peft-only", runs / "pixiu-run"
    shutil.copytree(adapter_dirs["medical"], peft_only)
    config = json_module.loads((peft_only / "adapter_config.json").read_text())
    (peft_only / "adapter_config.json").write_text(
        json_module.dumps({**config, "base_model_name_or_path": "other/base"})
    )
    shutil.copytree(adapter_dirs["medical"], pixiu_run)
    (pixiu_run / "pixiu_run.yaml").write_text("domain: medical\nbase_model: pypi:other-base\n")
    for folder, recorded in ((peft_only, "other/base"), (pixiu_run, "pypi:other-base")):
        path = str(folder.relative_to(pixiu_home))
        refused = call(app, "POST", "/v1/adapters", json={"name": "m", "path": path}, headers=ADMIN)
        message = refused.json()["error"]["message"]
        assert refused.status_code == 400 and f"trained on {recorded}" in message and '"force": true' in message
        forced = call(app, "POST", "/v1/adapters", json={"name": "m", "path": path, "force": True}, headers=ADMIN)
        assert forced.status_code == 200


def test_the_cli_refuses_an_adapter_of_another_base_without_force(adapter_dirs, tiny_model_dir, tmp_path):
    from pixiu.errors import PixiuError
    from pixiu.serve.server import check_base

    folder = tmp_path / "elsewhere"
    shutil.copytree(adapter_dirs["law"], folder)
    (folder / "pixiu_run.yaml").write_text("base_model: some/other-base\n")
    with pytest.raises(PixiuError, match=r"trained on some/other-base.*pass --force"):
        check_base(folder, str(tiny_model_dir), str(tiny_model_dir), force=False, how="pass --force")
    check_base(folder, str(tiny_model_dir), None, force=True, how="pass --force")
    check_base(adapter_dirs["law"], "pypi:spec", str(tiny_model_dir), force=False, how="")  # peft records the folder


def test_the_disclaimer_is_on_chat_answers_only_and_counted_in_usage(app, tokenizer, register_plugin):
    from pixiu_medical import plugin
    from pixiu_medical.safety import CUT_MARK, DISCLAIMER

    register_plugin(SimpleNamespace(process_response=plugin.process_response), "medical-safety")
    before = app.state.server.engine.stats()["generated_tokens"]
    whole = call(app, "POST", "/v1/chat/completions", json=chat_body("medical")).json()
    generated = app.state.server.engine.stats()["generated_tokens"] - before
    cut = CUT_MARK if whole["choices"][0]["finish_reason"] == "length" else ""
    added = len(tokenizer(cut + "\n\n" + DISCLAIMER, add_special_tokens=False)["input_ids"])
    assert whole["choices"][0]["message"]["content"].endswith(DISCLAIMER)
    assert whole["usage"]["completion_tokens"] == generated + added
    chunks, _ = events(
        call(
            app,
            "POST",
            "/v1/chat/completions",
            json=chat_body("medical", stream=True, stream_options={"include_usage": True}),
        )
    )
    assert chunks[-1]["usage"] == whole["usage"]
    text = call(app, "POST", "/v1/completions", json={"model": "medical", "prompt": "hi", "max_tokens": 5}).json()
    assert DISCLAIMER not in text["choices"][0]["text"] and text["usage"]["completion_tokens"] <= 5


def test_an_answer_cut_by_max_tokens_gets_the_cut_mark_and_disclaimer_counted_in_usage(app, tokenizer, register_plugin):
    from pixiu_medical import plugin
    from pixiu_medical.safety import CUT_MARK, DISCLAIMER

    register_plugin(SimpleNamespace(process_response=plugin.process_response), "medical-safety")
    before = app.state.server.engine.stats()["generated_tokens"]
    whole = call(app, "POST", "/v1/chat/completions", json=chat_body("medical", max_tokens=2)).json()
    generated = app.state.server.engine.stats()["generated_tokens"] - before
    assert whole["choices"][0]["finish_reason"] == "length" and generated == 2
    content = whole["choices"][0]["message"]["content"]
    assert content.endswith(CUT_MARK + "\n\n" + DISCLAIMER) and len(content) > len(CUT_MARK + "\n\n" + DISCLAIMER)
    added = len(tokenizer(CUT_MARK + "\n\n" + DISCLAIMER, add_special_tokens=False)["input_ids"])
    assert whole["usage"]["completion_tokens"] == generated + added
    body = chat_body("medical", max_tokens=2, stream=True, stream_options={"include_usage": True})
    chunks, done = events(call(app, "POST", "/v1/chat/completions", json=body))
    streamed = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert done and streamed == content  # greedy: the same two tokens, then the same addition as a final chunk
    assert chunks[-2]["choices"][0]["finish_reason"] == "length" and chunks[-1]["usage"] == whole["usage"]


def test_a_plugin_without_finish_reason_still_rewrites_served_answers_cut_or_not(app, register_plugin):
    HOOK_CALLS.clear()
    register_plugin(Disclaimer, "disclaimer")  # process_response(domain, text, adapter): hook API 1.1
    for max_tokens in (2, 10):
        answer = call(app, "POST", "/v1/chat/completions", json=chat_body("zhihu", max_tokens=max_tokens)).json()
        assert answer["choices"][0]["message"]["content"].endswith("\n(仅供参考)"), max_tokens
    assert answer["choices"][0]["finish_reason"] in ("stop", "length")
    assert HOOK_CALLS == [("zhihu", "zhihu", False), ("zhihu", "zhihu", False)]
