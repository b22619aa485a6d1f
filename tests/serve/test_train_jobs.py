"""Training from the browser, its API: admin token, uploads bounded and kept inside PIXIU_HOME, refusals, and a
tiny-model run started, cancelled and resumed as a real child `pixiu domain train`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from .helpers import ADMIN_TOKEN, call

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TINY = [
    "data.eval_records=4",
    "eval.max_new_tokens=4",
    "eval.general=false",
    "train.batch_tokens=512",
    "data.max_seq_len=128",
]
"""`settings` for a seconds-long run of the toy domain on the tiny model."""
ROUTES = [("GET", "/v1/train/options"), ("POST", "/v1/train/jobs"), ("PUT", "/v1/train/uploads/a.jsonl")]


@pytest.fixture
def child_sees_toy(toy_plugin: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The toy plugin, importable by child processes too (they get this interpreter's sys.path)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    return toy_plugin


def test_training_routes_need_the_admin_token(make_app, engine, pixiu_home: Path) -> None:
    """403 when the server has no admin token, 401 without or with a wrong one; an upload refused writes nothing."""
    closed = make_app(engine, admin_token=None)
    assert call(closed, "GET", "/v1/train/jobs", headers=AUTH).status_code == 403
    app = make_app(engine)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {ADMIN_TOKEN}"}):
        for method, path in [
            ("GET", "/v1/train/options"),
            ("POST", "/v1/train/jobs"),
            ("PUT", "/v1/train/uploads/a.jsonl"),
        ]:
            answer = call(app, method, path, headers=headers, content=b'{"q": 1}\n')
            assert answer.status_code == 401, (method, path, headers)
            assert "admin token" in answer.json()["error"]["message"]
    assert not (pixiu_home / "uploads").exists()
    assert call(app, "GET", "/v1/train/jobs", headers=AUTH).json() == {"data": []}
    page = call(app, "GET", "/train")  # the page itself is open; it asks for the token
    assert page.status_code == 200 and 'src="static/train.js"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'href="train"' in call(app, "GET", "/").text


def test_uploads_are_bounded_sanitised_and_kept_in_pixiu_home(make_app, engine, pixiu_home: Path, tmp_path) -> None:
    """A name's path is dropped and odd characters replaced; a taken name gets -2; over the limit is 413 and leaves
    no file; the upload limit, not the server's body limit, bounds uploads; data outside PIXIU_HOME is refused."""
    app = make_app(engine)  # its request bodies are limited to 64 KiB
    body = b'{"q": "1+1?", "a": "2"}\n' * 4000  # ~100 KB
    saved = call(app, "PUT", "/v1/train/uploads/..%2F..%2Fmy%20data.jsonl", headers=AUTH, content=body)
    assert saved.status_code == 201, saved.text
    assert saved.json() == {"file": "uploads/my_data.jsonl", "bytes": len(body)}
    assert (pixiu_home / "uploads" / "my_data.jsonl").read_bytes() == body
    again = call(app, "PUT", "/v1/train/uploads/my data.jsonl", headers=AUTH, content=b"{}\n")
    assert again.json()["file"] == "uploads/my_data-2.jsonl"
    assert call(app, "PUT", "/v1/train/uploads/run.sh", headers=AUTH, content=b"x").status_code == 400
    assert call(app, "PUT", "/v1/train/uploads/empty.jsonl", headers=AUTH, content=b"").status_code == 400

    app.state.upload_limit = 1000
    big = call(app, "PUT", "/v1/train/uploads/big.jsonl", headers=AUTH, content=b"x" * 1001)
    assert big.status_code == 413 and "larger than 1000 bytes" in big.json()["error"]["message"]
    assert sorted(p.name for p in (pixiu_home / "uploads").iterdir()) == ["my_data-2.jsonl", "my_data.jsonl"]
    assert sorted(p.name for p in pixiu_home.iterdir()) == ["uploads"]

    options = call(app, "GET", "/v1/train/options", headers=AUTH).json()
    assert options["data"] == ["uploads/my_data-2.jsonl", "uploads/my_data.jsonl"] and options["upload_limit"] == 1000
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"q": "a", "a": "b"}\n')
    for data in (str(outside), "../outside.jsonl", "uploads/missing.jsonl"):
        refused = call(app, "POST", "/v1/train/jobs", headers=AUTH, json={"domain": "chat", "data": data})
        assert refused.status_code == 400 and refused.json()["error"]["message"].startswith("data:"), data
    assert not (pixiu_home / "runs").exists()


def test_bad_settings_are_refused_before_anything_starts(make_app, engine, pixiu_home: Path, tmp_path: Path) -> None:
    """An unknown domain is 404 naming the installed ones; a bad recipe key or value, or a base that cannot load,
    is 400 saying what is wrong; only an unfinished run with a checkpoint is offered for, and may, resume."""
    app = make_app(engine)
    unknown = call(app, "POST", "/v1/train/jobs", headers=AUTH, json={"domain": "nope"})
    assert unknown.status_code == 404 and "known domains: chat" in unknown.json()["error"]["message"]
    bad_key = call(app, "POST", "/v1/train/jobs", headers=AUTH, json={"domain": "chat", "settings": ["train.nope=1"]})
    assert bad_key.status_code == 400 and "train.nope" in bad_key.json()["error"]["message"]
    bad_value = call(app, "POST", "/v1/train/jobs", headers=AUTH, json={"domain": "chat", "lora_r": 0})
    assert bad_value.status_code == 400 and "lora_r" in bad_value.json()["error"]["message"]
    for base, why in [
        ("/no/such/model", "does not exist"),
        ("nope:model", "unknown model source"),
        (str(tmp_path), "config.json"),
        (__file__, "not a .gguf"),
    ]:
        refused = call(app, "POST", "/v1/train/jobs", headers=AUTH, json={"domain": "chat", "base": base})
        assert refused.status_code == 400 and why in refused.json()["error"]["message"], (base, refused.text)
    for name, status, checkpoint in [
        ("law-1", "training", True),  # e.g. interrupted in a terminal
        ("law-2", "finished", True),
        ("law-3", "training", False),
    ]:
        run = pixiu_home / "runs" / name
        (run / "checkpoints" / "step-00000002").mkdir(parents=True)
        (run / "pixiu_run.yaml").write_text(f"domain: law\nstatus: {status}\n")
        if checkpoint:
            (run / "checkpoints" / "step-00000002" / "state.pt").write_bytes(b"")
    assert call(app, "GET", "/v1/train/options", headers=AUTH).json()["resumable"] == ["law-1"]
    finished = call(app, "POST", "/v1/train/jobs/law-2/resume", headers=AUTH)
    assert finished.status_code == 400 and "has finished" in finished.json()["error"]["message"]
    early = call(app, "POST", "/v1/train/jobs/law-3/resume", headers=AUTH)
    assert early.status_code == 400 and "no checkpoint yet" in early.json()["error"]["message"]
    missing = call(app, "POST", "/v1/train/jobs/nope/resume", headers=AUTH)
    assert missing.status_code == 404
    assert call(app, "POST", "/v1/train/jobs/..%2Fx/resume", headers=AUTH).status_code in (400, 404)
    assert call(app, "POST", "/v1/train/jobs/nope/cancel", headers=AUTH).status_code == 404
    assert sorted(p.name for p in (pixiu_home / "runs").iterdir()) == ["law-1", "law-2", "law-3"]  # no new run


def wait_for(app, name: str, done, timeout: float = 120) -> dict:
    """Poll the job until `done(job)`; fails with its console output after `timeout` seconds."""
    deadline, job = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        job = call(app, "GET", f"/v1/train/jobs/{name}", headers=AUTH).json()
        if done(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {name} did not get there: {job}")


def toy_job(app, tiny_model_dir: Path, tmp_path: Path, max_steps: int) -> dict:
    """Upload toy data and start a tiny run of the toy domain on it (saving a checkpoint every step)."""
    from toy_domain import write_toy_data

    content = write_toy_data(tmp_path / "toy.jsonl", 24).read_bytes()
    data = call(app, "PUT", "/v1/train/uploads/toy.jsonl", headers=AUTH, content=content).json()["file"]
    body = {
        "domain": "toy",
        "base": str(tiny_model_dir),
        "data": data,
        "max_steps": max_steps,
        "lr": 0.001,
        "lora_r": 4,
        "settings": [*TINY, "train.save_every=1"],
    }
    started = call(app, "POST", "/v1/train/jobs", headers=AUTH, json=body)
    assert started.status_code == 201, started.text
    busy = call(app, "POST", "/v1/train/jobs", headers=AUTH, json=body)
    assert busy.status_code == 409 and "is training" in busy.json()["error"]["message"]
    return started.json()


def test_cancel_interrupts_a_run_and_frees_its_slot(
    make_app, engine, child_sees_toy: str, tiny_model_dir: Path, pixiu_home: Path, tmp_path: Path
) -> None:
    """A run starts as `pixiu domain train` in a child of the server (a second one is refused meanwhile); Cancel
    interrupts it before its first checkpoint, so it is not resumable, and the next run may start."""
    app = make_app(engine)
    job = toy_job(app, tiny_model_dir, tmp_path, max_steps=3)
    name = job["name"]
    assert job["status"] == "running" and job["max_steps"] == 3 and name.startswith("toy-")
    assert job["command"][1:6] == ["-m", "pixiu", "domain", "train", "toy"] and "--max-steps=3" in job["command"]
    assert call(app, "POST", f"/v1/train/jobs/{name}/cancel", headers=AUTH).status_code == 200
    job = wait_for(app, name, lambda j: j["status"] != "running", timeout=60)
    assert job["status"] == "interrupted" and not job["resumable"] and job["step"] == 0, job
    assert job["log"].startswith("$ pixiu domain train toy --output=")
    assert call(app, "POST", f"/v1/train/jobs/{name}/cancel", headers=AUTH).status_code == 409
    refused = call(app, "POST", f"/v1/train/jobs/{name}/resume", headers=AUTH)
    assert refused.status_code == 400 and "start a new run" in refused.json()["error"]["message"]
    second = toy_job(app, tiny_model_dir, tmp_path, max_steps=3)["name"]  # the slot is free again
    assert call(app, "POST", f"/v1/train/jobs/{second}/cancel", headers=AUTH).status_code == 200
    wait_for(app, second, lambda j: j["status"] != "running", timeout=60)
    listed = call(app, "GET", "/v1/train/jobs", headers=AUTH).json()["data"]
    assert [(j["name"], j["status"]) for j in listed] == [(second, "interrupted"), (name, "interrupted")]


@pytest.mark.slow
def test_a_cancelled_run_resumes_to_the_end(
    make_app, engine, child_sees_toy: str, tiny_model_dir: Path, pixiu_home: Path, tmp_path: Path
) -> None:
    """Cancelled mid-training, a run keeps its checkpoint and says how to continue; Resume finishes it, registered
    and scored as a terminal run is; a finished run does not resume again."""
    from pixiu.registry import list_adapters

    app = make_app(engine)
    name = toy_job(app, tiny_model_dir, tmp_path, max_steps=60)["name"]
    run_dir = pixiu_home / "runs" / name
    wait_for(app, name, lambda j: j["step"] >= 2 or j["status"] != "running")
    assert call(app, "POST", f"/v1/train/jobs/{name}/cancel", headers=AUTH).status_code == 200
    job = wait_for(app, name, lambda j: j["status"] != "running")
    assert job["status"] == "interrupted" and job["resumable"] and job["exit_code"] == 130, job
    assert "--resume" in job["log"] and job["step"] < 60

    resumed = call(app, "POST", f"/v1/train/jobs/{name}/resume", headers=AUTH)
    assert resumed.status_code == 201, resumed.text
    job = wait_for(app, name, lambda j: j["status"] != "running")
    assert job["status"] == "finished" and job["step"] == 60, job["log"]
    assert "resuming" in job["log"] and "registered as 'toy'" in job["log"]
    assert {"adapter_model.safetensors", "metrics.json", "predictions.jsonl"} <= {p.name for p in run_dir.iterdir()}
    assert [entry.name for entry in list_adapters()] == ["toy"]
    again = call(app, "POST", f"/v1/train/jobs/{name}/resume", headers=AUTH)
    assert again.status_code == 400 and "finished" in again.json()["error"]["message"]
