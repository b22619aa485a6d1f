"""Reference summaries: the user's win, then a teacher behind a local fake OpenAI-compatible server, then silver."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu import PixiuError
from pixiu.teacher import TeacherCache, cache_key
from pixiu.testing.loopback import ChatRequest, FakeOpenAI, completion, serving
from pixiu_zhihu.commands import group
from pixiu_zhihu.extractive import MAX_SILVER_CHARS, extractive_summary
from pixiu_zhihu.references import fill_references
from pixiu_zhihu.teacher import SYSTEM_PROMPT, summary_teacher


def question(qid: str, *texts: str, **extra: object) -> dict:
    answers = [{"answer_id": f"{qid}-{i}", "text": t, "voteup_count": 100 - i} for i, t in enumerate(texts)]
    return {"question_id": qid, "title": f"问题{qid}怎么办？", "detail": "", "answers": answers, **extra}


RECORDS = [
    question(
        "1", "关键是早点睡觉，十一点前放下手机。", "把闹钟放远，必须下床才能关掉。", summary="用户写的摘要：早睡。"
    ),
    question("2", "先走跑结合，跑一分钟走两分钟。", "买双合适的跑鞋，能少受很多伤。"),
    question("3", "精听加听写，一句句听到能写出来。"),
    question("4", "发工资先存一部分，剩下的再花。", "坚持记账，才知道钱花在哪里。"),
    question("5", "睡前一小时不看手机，蓝光影响入睡。", summary="已有的银摘要", reference="silver"),
    {"question_id": "6", "title": "热榜问题", "rank": 1, "heat": "10 万热度"},
    question("7", " "),
]


class SummaryServer(FakeOpenAI):
    """A local OpenAI-compatible /v1/chat/completions: answers "摘要：<question title>", or fails when told."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.fail_from: int | None = None  # answer HTTP 500 from this request number on
        self.statuses: list[int] = []  # statuses to answer first, one per request (then 200)
        self.content: str | None = None  # fixed content instead of the title summary

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        """Record path, authorization and body; answer the queued status, a failure, or the title summary."""
        self.requests.append({"path": request.path, "auth": request.authorization, "body": request.body})
        status = self.statuses.pop(0) if self.statuses else 200
        if self.fail_from is not None and len(self.requests) >= self.fail_from:
            status = 500
        if status != 200:
            return status, {"error": {"message": "boom"}}
        title = request.body["messages"][-1]["content"].splitlines()[0].removeprefix("问题：")
        content = self.content if self.content is not None else "摘要：" + title
        return 200, completion(content, id="chatcmpl-1", object="chat.completion", model=request.body["model"])


@pytest.fixture
def fake_openai() -> Iterator[SummaryServer]:
    fake = SummaryServer()
    with serving(fake):
        yield fake


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    path = tmp_path / "raw.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    return path


def read(path: Path) -> dict[str, dict]:
    return {r["question_id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_teacher_fills_what_the_user_did_not(fake_openai: SummaryServer, raw: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    teacher = summary_teacher(fake_openai.url, "qwen-test", TeacherCache(cache), api_key="sk-local")
    counts = fill_references(raw, tmp_path / "out.jsonl", teacher=teacher, top_k=3)
    assert dict(counts) == {
        "user": 1,
        "teacher": 4,
        "skipped: not a question with answers (hot-list entries need follow_answers=1)": 1,
        "skipped: no answer has text": 1,
    }
    out = read(tmp_path / "out.jsonl")
    assert (out["1"]["summary"], out["1"]["reference"]) == ("用户写的摘要：早睡。", "user")
    assert (out["2"]["summary"], out["2"]["reference"]) == (
        "问题2怎么办？",
        "teacher",
    )  # the "摘要：" label is parsed off
    assert out["5"]["reference"] == "teacher"  # a teacher replaces an earlier silver summary
    assert out["2"]["answers"] == RECORDS[1]["answers"] and "6" not in out and "7" not in out
    first = fake_openai.requests[0]
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer sk-local"
    assert first["body"]["model"] == "qwen-test" and first["body"]["temperature"] == 0
    assert first["body"]["messages"][0]["role"] == "system"
    assert first["body"]["messages"][1]["content"].startswith("问题：问题2怎么办？\n答1：先走跑结合")
    assert len(cache.read_text(encoding="utf-8").splitlines()) == 4 == teacher.calls


def test_second_run_makes_no_http_calls(fake_openai: SummaryServer, raw: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    fill_references(
        raw, tmp_path / "a.jsonl", teacher=summary_teacher(fake_openai.url, "m", TeacherCache(cache)), top_k=3
    )
    sent = len(fake_openai.requests)
    again = summary_teacher(fake_openai.url, "m", TeacherCache(cache))
    fill_references(raw, tmp_path / "b.jsonl", teacher=again, top_k=3)
    assert again.calls == 0 and len(fake_openai.requests) == sent == 4
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    other_model = summary_teacher(fake_openai.url, "another-model", TeacherCache(cache))
    fill_references(raw, tmp_path / "c.jsonl", teacher=other_model, top_k=3)
    assert other_model.calls == 4  # the key covers the model, not only the prompt


def test_a_crash_midway_keeps_the_summaries_received(fake_openai: SummaryServer, raw: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache.jsonl"
    fake_openai.fail_from = 3
    teacher = summary_teacher(fake_openai.url, "m", TeacherCache(cache))
    with pytest.raises(
        PixiuError, match=r"raw.jsonl:4: teacher .* answered HTTP 500: .*boom.*running the same command again resumes"
    ):
        fill_references(raw, tmp_path / "out.jsonl", teacher=teacher, top_k=3)
    assert not (tmp_path / "out.jsonl").exists()  # no half-written output
    assert len(TeacherCache(cache)) == 2
    with cache.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn by a cra')  # what a kill during a write could leave
    fake_openai.fail_from = None
    resumed = summary_teacher(fake_openai.url, "m", TeacherCache(cache))
    fill_references(raw, tmp_path / "out.jsonl", teacher=resumed, top_k=3)
    assert resumed.calls == 2 and len(fake_openai.requests) == 3 + 2
    assert sum(r["reference"] == "teacher" for r in read(tmp_path / "out.jsonl").values()) == 4


def test_transient_statuses_are_retried(fake_openai: SummaryServer, tmp_path: Path) -> None:
    fake_openai.statuses = [503, 429]
    teacher = summary_teacher(
        fake_openai.url + "/chat/completions", "m", TeacherCache(tmp_path / "c.jsonl"), sleep=lambda seconds: None
    )
    assert teacher.ask("问题：早起\n答1：早睡") == "摘要：早起" and teacher.calls == 3
    assert teacher.url == fake_openai.url + "/chat/completions"


def test_unreachable_teacher_says_how_to_fix(tmp_path: Path) -> None:
    teacher = summary_teacher(
        "http://127.0.0.1:9/v1",
        "m",
        TeacherCache(tmp_path / "c.jsonl"),
        retries=1,
        timeout=2,
        sleep=lambda seconds: None,
    )
    url = "http://127.0.0.1:9/v1/chat/completions"
    with pytest.raises(PixiuError, match=f"cannot reach teacher {url}: .*Is the server running"):
        teacher.ask("问题")


def test_empty_teacher_answer_falls_back_to_silver(fake_openai: SummaryServer, raw: Path, tmp_path: Path) -> None:
    fake_openai.content = "  "
    teacher = summary_teacher(fake_openai.url, "m", TeacherCache(tmp_path / "c.jsonl"))
    counts = fill_references(raw, tmp_path / "out.jsonl", teacher=teacher, top_k=3)
    assert counts["silver"] == 4 and counts["user"] == 1


def test_silver_fallback_without_teacher(raw: Path, tmp_path: Path) -> None:
    counts = fill_references(raw, tmp_path / "out.jsonl", teacher=None, top_k=3)
    assert counts["silver"] == 4 and counts["user"] == 1
    out = read(tmp_path / "out.jsonl")
    assert out["5"]["summary"] != "已有的银摘要"  # silver summaries are computed again
    for record in out.values():
        if record["reference"] == "silver":
            assert 0 < len(record["summary"]) <= MAX_SILVER_CHARS
            assert any(part in a["text"] for a in record["answers"] for part in record["summary"].split("；"))


def test_extractive_summary_prefers_keyword_rich_sentences_of_top_answers() -> None:
    record = question(
        "9",
        "早起的关键是早睡。今天天气不错。",
        "早睡早起，早起之前先早睡。",
        "哈哈。",
        "低赞：早起早睡早起早睡早起。",
    )
    assert extractive_summary(record, top_k=3) == "早起的关键是早睡；早睡早起，早起之前先早睡"
    assert extractive_summary({"answers": []}) == ""
    assert len(extractive_summary(question("8", "很长" * 40), max_chars=12)) == 12


def test_cache_keys_and_lines(tmp_path: Path) -> None:
    cache = TeacherCache(tmp_path / "nested" / "cache.jsonl")
    key = cache_key("m", SYSTEM_PROMPT, "prompt")
    assert key == cache_key("m", SYSTEM_PROMPT, "prompt") != cache_key("m2", SYSTEM_PROMPT, "prompt") and len(key) == 64
    cache.put(key, "摘要", "m")
    assert TeacherCache(tmp_path / "nested" / "cache.jsonl").get(key) == "摘要"
    assert json.loads((tmp_path / "nested" / "cache.jsonl").read_text(encoding="utf-8")) == {
        "key": key,
        "model": "m",
        "answer": "摘要",
    }


def test_references_command(
    fake_openai: SummaryServer, raw: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEACHER_KEY", "sk-cli")
    out = tmp_path / "train.jsonl"
    args = [
        "references",
        str(raw),
        str(out),
        "--teacher-url",
        fake_openai.url,
        "--teacher-model",
        "m",
        "--api-key-env",
        "TEACHER_KEY",
    ]
    first = CliRunner().invoke(group, args)
    assert first.exit_code == 0, first.output
    assert "5 questions written" in first.output and "teacher: 4" in first.output
    assert "teacher requests made: 4" in first.output
    assert (tmp_path / "train.teacher-cache.jsonl").is_file() and fake_openai.requests[0]["auth"] == "Bearer sk-cli"
    second = CliRunner().invoke(group, args)
    assert "4 summaries cached" in second.output and "teacher requests made: 0" in second.output

    silver = CliRunner().invoke(group, ["references", str(raw), str(tmp_path / "silver.jsonl")])
    assert silver.exit_code == 0 and "silver: 4" in silver.output
    lonely = CliRunner().invoke(group, ["references", str(raw), str(out), "--teacher-url", fake_openai.url])
    assert lonely.exit_code != 0 and "--teacher-url and --teacher-model go together" in lonely.output
