"""The read-only runs API on fabricated run folders: list, one run, paged predictions, compare, the report, 404s
for anything not listed (no path traversal), and the live stream of a training's log."""

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi import FastAPI

from pixiu.files import locked
from pixiu.paths import runs_dir
from pixiu.serve import runs_api
from pixiu.serve.http import install_error_handlers
from run_folders import append_log, fake_run

from .helpers import call

CHILD = Path(__file__).parents[1] / "core" / "train_child.py"


@pytest.fixture
def runs_app() -> FastAPI:
    """The runs routes alone, with the server's error bodies (they need no engine)."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(runs_api.router)
    return app


def test_list_one_run_predictions_and_compare(runs_app: FastAPI) -> None:
    fake_run(runs_dir() / "a", predictions=3)
    fake_run(runs_dir() / "b", status="training", lr=2e-4)
    listed = call(runs_app, "GET", "/v1/runs").json()["data"]
    assert {(r["id"], r["status"]) for r in listed} == {("a", "finished"), ("b", "failed")}
    run = call(runs_app, "GET", "/v1/runs/a").json()
    assert run["curve"]["step"] == [1, 2, 3] and run["predictions"] == 3 and run["scores"]["exact_match"]
    page = call(runs_app, "GET", "/v1/runs/a/predictions", params={"offset": 2, "limit": 2}).json()
    assert page["total"] == 3 and [r["gold"] for r in page["rows"]] == ["a2"]
    compared = call(runs_app, "GET", "/v1/runs/compare", params={"runs": "a,b"}).json()
    assert compared["config_diff"] == [{"key": "train.lr", "values": [1e-3, 2e-4]}]
    too_few = call(runs_app, "GET", "/v1/runs/compare", params={"runs": "a,a"})
    assert too_few.status_code == 400 and "two or more" in too_few.json()["error"]["message"]
    assert call(runs_app, "GET", "/v1/runs/a/predictions", params={"limit": 101}).status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/v1/runs/..%2F..%2Fetc",
        "/v1/runs/%2Fetc%2Fpasswd",
        "/v1/runs/..",
        "/v1/runs/a%2F..%2F..%2Fsecret/predictions",
        "/v1/runs/secret/report",
        "/v1/runs/..%2Fsecret/log",
        "/v1/runs/compare?runs=a,..%2Fsecret",
    ],
)
def test_names_outside_the_listed_runs_are_404(runs_app: FastAPI, path: str) -> None:
    fake_run(runs_dir() / "a")
    secret = fake_run(runs_dir().parent / "secret")  # in PIXIU_HOME, but not under runs/ nor registered
    (secret / "report.html").write_text("TOP-SECRET", encoding="utf-8")
    response = call(runs_app, "GET", path)
    assert response.status_code == 404 and "error" in response.json()
    assert "TOP-SECRET" not in response.text and "train.lr" not in response.text


def test_report_is_served_without_scripts(runs_app: FastAPI) -> None:
    folder = fake_run(runs_dir() / "a")
    assert call(runs_app, "GET", "/v1/runs/a/report").status_code == 404  # not written yet: says how
    (folder / "report.html").write_text("<html>report</html>", encoding="utf-8")
    report = call(runs_app, "GET", "/v1/runs/a/report")
    assert report.text == "<html>report</html>" and "script-src" not in report.headers["content-security-policy"]
    assert "default-src 'none'" in report.headers["content-security-policy"]


def events(text: str) -> list[tuple[str, dict]]:
    """Server-sent events as (event name, data), `message` when unnamed; comments left out."""
    parsed = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if lines:
            name = next((line[7:] for line in lines if line.startswith("event: ")), "message")
            parsed.append((name, json.loads(next(line[6:] for line in lines if line.startswith("data: ")))))
    return parsed


def test_the_stream_of_a_finished_run_sends_its_log_then_ends(runs_app: FastAPI) -> None:
    fake_run(runs_dir() / "a", steps=2)
    stream = call(runs_app, "GET", "/v1/runs/a/log")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert [(name, data.get("step", data.get("status"))) for name, data in events(stream.text)] == [
        ("message", 1),
        ("message", 2),
        ("end", "finished"),
    ]


def test_the_stream_tails_a_live_training_until_it_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines a training appends (a terminal run: only its files are shared) arrive as they are written; a rewritten
    log (a resume) is announced; the stream ends once the run's lock is released."""
    monkeypatch.setattr(runs_api, "POLL_SECONDS", 0.01)
    folder = fake_run(runs_dir() / "live", status="training", steps=1)

    async def follow() -> list[tuple[str, dict]]:
        seen: list[str] = []
        with locked(folder / ".pixiu.lock", blocking=False):
            stream = runs_api.tail_log(folder, lambda: runs_api.run_index.run_status(folder))
            seen.append(await anext(stream))
            append_log(folder, 2, 1.5)
            with (folder / "train_log.jsonl").open("a") as log:
                log.write('{"step": 3, "lo')  # half a line: not sent until whole
            seen.append(await anext(stream))
            with (folder / "train_log.jsonl").open("a") as log:
                log.write('ss": 1.25}\n')
            seen.append(await anext(stream))
            (folder / "train_log.jsonl").write_text('{"step": 1, "loss": 9.0}\n')  # rewritten, smaller
            seen += [await anext(stream), await anext(stream)]
        seen += [event async for event in stream]
        return events("".join(seen))

    got = asyncio.run(asyncio.wait_for(follow(), timeout=10))
    assert [(name, data.get("step", data.get("status"))) for name, data in got] == [
        ("message", 1),
        ("message", 2),
        ("message", 3),
        ("reset", None),
        ("message", 1),
        ("end", "failed"),
    ]
    assert got[2][1]["loss"] == 1.25


def test_the_app_serves_the_runs_pages(app) -> None:
    page = call(app, "GET", "/runs")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="static/runs.js" type="module"' in page.text and "<script>" not in page.text
    for name in ("runs.js", "runs-views.js", "runs.css", "vendor/chart.umd.min.js", "vendor/chart.js.LICENSE"):
        assert call(app, "GET", f"/static/{name}").status_code == 200
    assert "innerHTML" not in call(app, "GET", "/static/runs.js").text
    assert call(app, "GET", "/v1/runs").json() == {"object": "list", "data": []}


@pytest.mark.slow  # a child process importing torch: ~15 s on two busy cores
def test_a_run_trained_by_another_process_is_followed_until_it_dies(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A real training in a child process (as from a terminal) is `training` while it runs; its steps stream as
    it logs them; SIGKILLed in step 4 after its step-2 checkpoint, it ends `interrupted`."""
    from toy_domain import write_toy_data

    folder = runs_dir() / "toy-child"
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    settings = ["data.max_seq_len=64", "train.batch_tokens=256", "data.eval_records=0", "train.max_steps=6"]
    arguments = ["--base", str(tiny_model_dir), "--data", str(data), "--run-dir", str(folder), "--die-at-step", "4"]
    arguments += [f"--set={s}" for s in [*settings, "train.save_every=2"]]
    child = subprocess.Popen([sys.executable, str(CHILD), *arguments])
    try:
        deadline = time.monotonic() + 120
        while runs_api.run_index.run_status(folder) != "training":
            assert child.poll() is None and time.monotonic() < deadline, "the child never started training"
            time.sleep(0.05)

        async def follow() -> list[str]:
            return [event async for event in runs_api.tail_log(folder, lambda: runs_api.run_index.run_status(folder))]

        got = events("".join(asyncio.run(asyncio.wait_for(follow(), timeout=120))))
    finally:
        child.kill()
        child.wait()
    assert [data.get("step") for name, data in got if name == "message"] == [1, 2, 3]
    assert got[-1] == ("end", {"status": "interrupted"})
    assert runs_api.run_index.run_detail(folder.name)["status"] == "interrupted"
