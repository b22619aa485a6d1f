"""Reward models in serve: `POST /v1/score` on the shared base equals `load_reward_model`'s scores, reward models
refuse to generate and chat adapters to score, `/v1/models` marks them, and unloading frees their heads."""

import shutil
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pixiu.preference import tokenize_answer
from pixiu.reward_model import load_reward_model

from .helpers import ADMIN_TOKEN, PROMPTS, RM_MAX_LEN, call

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ANSWERS = ["盗窃罪。", "I do not know, sorry, but let me think about it at some length first.", "", "hello hello"]
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": PROMPTS[0]}]


@pytest.fixture(scope="session")
def reference_rm(rm_dir: Path):
    """The reward model as `pixiu.reward_model.load_reward_model` loads it on its own base copy."""
    return load_reward_model(rm_dir, device="cpu", precision="fp32")


@pytest.fixture
def make_rm_app(make_engine, make_app, rm_dir):
    """`make_rm_app(**engine_options)`: the app over an engine serving the test adapters and zhihu-rm."""

    def make(**options):
        engine = make_engine(**options)
        engine.load_adapter("zhihu-rm", rm_dir, domain="zhihu")
        return make_app(engine.start())

    return make


@pytest.fixture
def rm_app(make_rm_app):
    return make_rm_app()


def score(app, model="zhihu-rm", **body):
    return call(app, "POST", "/v1/score", json={"model": model, "answers": ANSWERS, "messages": MESSAGES, **body})


@pytest.mark.parametrize("prefill_chunk", [512, 16])  # all answers in one pass; each answer in its own pass
def test_scores_equal_load_reward_models(make_rm_app, reference_rm, tokenizer, prefill_chunk):
    app = make_rm_app(prefill_chunk=prefill_chunk)
    response = score(app)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list" and body["model"] == "zhihu-rm"
    assert [item["index"] for item in body["data"]] == list(range(len(ANSWERS)))
    expected = [reference_rm.score(MESSAGES, answer) for answer in ANSWERS]
    assert [item["score"] for item in body["data"]] == pytest.approx(expected, abs=1e-4)
    assert len({round(value, 3) for value in expected}) == len(ANSWERS)  # the head does tell the answers apart
    rows = [tokenize_answer(tokenizer, MESSAGES, answer, RM_MAX_LEN) for answer in ANSWERS]
    assert body["usage"] == {"prompt_tokens": sum(len(row.input_ids) for row in rows)}
    text = call(app, "POST", "/v1/score", json={"model": "zhihu-rm", "prompt": PROMPTS[1], "answers": ANSWERS[:2]})
    assert [item["score"] for item in text.json()["data"]] == pytest.approx(
        [reference_rm.score(PROMPTS[1], answer) for answer in ANSWERS[:2]], abs=1e-4
    )


def test_a_reward_model_refuses_to_generate(rm_app):
    chat = {"model": "zhihu-rm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    for url, body in [("/v1/chat/completions", chat), ("/v1/completions", {"model": "zhihu-rm", "prompt": "hi"})]:
        response = call(rm_app, "POST", url, json=body)
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert error["message"] == (
            "zhihu-rm is a reward model: it scores answers at POST /v1/score; it does not generate"
        )
        assert error["param"] == "model" and error["type"] == "invalid_request_error"


def test_the_engine_refuses_to_generate_with_a_reward_model(make_engine, rm_dir):
    from pixiu.serve.adapters import WrongKind
    from pixiu.serve.request import SamplingParams

    engine = make_engine()
    engine.load_adapter("zhihu-rm", rm_dir)
    with pytest.raises(WrongKind, match="is a reward model"):
        engine.submit("zhihu-rm", [1, 2, 3], SamplingParams(max_tokens=2), lambda token, reason: None)
    assert engine.stats()["waiting"] == 0


def test_chat_adapters_and_the_base_refuse_to_score(rm_app):
    for model, what in [("law", "is a chat adapter"), ("base", "is the plain base model")]:
        response = score(rm_app, model)
        assert response.status_code == 400, model
        error = response.json()["error"]
        assert f"{model} {what}" in error["message"] and "no reward head" in error["message"]
        assert error["param"] == "model"


def test_an_unknown_model_is_a_404(rm_app):
    response = score(rm_app, "nope-rm")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_models_mark_the_reward_model(rm_app, rm_dir):
    cards = {card["id"]: card for card in call(rm_app, "GET", "/v1/models").json()["data"]}
    assert cards["zhihu-rm"]["kind"] == "reward_model"
    assert cards["zhihu-rm"]["object"] == "model" and cards["zhihu-rm"]["parent"] == "base"
    assert cards["zhihu-rm"]["root"] == str(rm_dir)
    assert cards["law"]["kind"] == "chat" and cards["base"]["kind"] == "chat"
    assert call(rm_app, "GET", "/v1/models/zhihu-rm").json()["kind"] == "reward_model"


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"answers": []}, 400, "answers", "must not be empty"),
        ({"answers": ["a"] * 65}, 400, "answers", "too long (at most 64)"),
        ({"prompt": "hi"}, 400, None, "exactly one of them"),
        ({"messages": None}, 400, None, "exactly one of them"),
        ({"messages": [{"role": "user", "content": "长" * 400}]}, 400, "messages", "too long for zhihu-rm"),
        ({"answers": ["x" * 70_000]}, 413, None, "larger than"),
    ],
)
def test_bad_score_requests(rm_app, body, status, param, words):
    response = score(rm_app, **body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["param"] == param


def test_admin_loads_a_reward_model_with_its_head_and_unloading_frees_it(rm_app, rm_dir, pixiu_home):
    engine = rm_app.state.server.engine
    assert len(engine.adapters.heads()) == 1  # zhihu-rm's; the chat adapters have none
    shutil.copytree(rm_dir, pixiu_home / "runs" / "rm")
    loaded = call(rm_app, "POST", "/v1/adapters", json={"name": "rm2", "path": "runs/rm"}, headers=ADMIN)
    assert loaded.status_code == 200 and loaded.json()["kind"] == "reward_model"
    assert len(engine.adapters.heads()) == 2
    assert score(rm_app, "rm2").json()["data"] == score(rm_app).json()["data"]
    for name in ["rm2", "zhihu-rm"]:
        assert call(rm_app, "DELETE", f"/v1/adapters/{name}", headers=ADMIN).status_code == 200
    assert engine.adapters.heads() == {}
    assert score(rm_app).status_code == 404
    replaced = call(rm_app, "POST", "/v1/adapters", json={"name": "rm2", "path": "runs/rm"}, headers=ADMIN)
    assert replaced.status_code == 200 and len(engine.adapters.heads()) == 1  # a reused slot gets its head again


def test_evicting_a_reward_model_frees_its_head(make_engine, rm_dir, adapter_dirs):
    engine = make_engine(max_adapters=4)
    engine.load_adapter("zhihu-rm", rm_dir)
    engine.adapters.acquire("law")  # law, medical, zhihu are older; hold law so an idle one is evicted first
    for name in ["medical", "zhihu"]:
        engine.adapters.acquire(name)
    engine.load_adapter("again", adapter_dirs["law"])
    assert "zhihu-rm" not in engine.adapters.loaded() and engine.adapters.heads() == {}


def test_scoring_is_counted_in_the_metrics(rm_app):
    score(rm_app)
    score(rm_app, answers=["one"])
    families = {f.name: f for f in text_string_to_metric_families(call(rm_app, "GET", "/metrics").text)}
    requests = {s.labels["model"]: s.value for s in families["pixiu_score_requests"].samples}
    assert requests == {"zhihu-rm": 2}
    answers = [s.value for s in families["pixiu_scored_answers"].samples if s.name.endswith("_total")]
    assert answers == [len(ANSWERS) + 1]


def test_vllm_is_not_handed_reward_models(tiny_model_dir, adapter_dirs, rm_dir):
    from click.testing import CliRunner

    from pixiu.cli import cli

    args = ["serve", "--engine", "vllm", "--print-command", "--no-registry", "--base", str(tiny_model_dir)]
    result = CliRunner().invoke(cli, [*args, "--adapter", f"law={adapter_dirs['law']}", "--adapter", f"rm={rm_dir}"])
    assert result.exit_code == 0, result.output
    assert f"law={adapter_dirs['law']}" in result.stdout and "rm=" not in result.stdout
    assert "not serving reward model 'rm' on vLLM" in result.stderr


def test_unloading_a_reward_model_while_it_scores_waits_without_spinning_the_engine(make_engine, rm_dir, monkeypatch):
    import threading

    engine = make_engine()
    engine.load_adapter("zhihu-rm", rm_dir)
    engine.start()
    steps = []
    step = engine._step
    monkeypatch.setattr(engine, "_step", lambda *args: (steps.append(1), step(*args))[1])
    slot, _ = engine.adapters.acquire("zhihu-rm")  # a scoring call in flight holds the slot
    done = engine.unload_adapter("zhihu-rm")
    threading.Event().wait(0.3)
    assert not done.done() and len(steps) <= 2  # the engine waits for the holder instead of looping
    engine.adapters.release(slot)
    with engine._cond:  # as Engine.score does after releasing
        engine._cond.notify()
    done.result(timeout=5)
    assert engine.adapters.heads() == {}
