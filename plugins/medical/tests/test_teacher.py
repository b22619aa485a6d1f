"""Teacher answers through a fake OpenAI-compatible server on 127.0.0.1: grounded prompts, cache reuse, crash-resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu import PixiuError
from pixiu.files import write_jsonl
from pixiu.teacher import TeacherCache, cache_key
from pixiu.testing.loopback import ChatRequest, FakeOpenAI, completion, serving
from pixiu_medical.commands import group
from pixiu_medical.formatter import format_record
from pixiu_medical.instructions import generate_instructions
from pixiu_medical.kg import merge_triples, triples_from_disease
from pixiu_medical.safety import unsafe_dose
from pixiu_medical.teacher import (
    DOSE_ADVICE,
    SYSTEM_PROMPT,
    answer_teacher,
    teacher_prompt,
    with_teacher_answers,
)

GRAPH = merge_triples(
    triples_from_disease(
        {
            "name": "感冒",
            "symptoms": ["发热", "鼻塞"],
            "drugs": ["解热镇痛药"],
            "departments": ["呼吸内科"],
        }
    )
)


class AnsweringServer(FakeOpenAI):
    """A chat-completions endpoint that answers from the prompt, and can fail on cue."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[dict] = []
        self.fail_from: int | None = None  # answer HTTP 400 from this request on (0-based)
        self.unavailable_once = False  # answer the next request with 503
        self.dose = False  # answers give a dose without advice

    def reply(self, request: ChatRequest) -> tuple[int, dict]:
        """A grounded answer naming the question, or the failure asked for."""
        if request.path != "/v1/chat/completions":
            return 404, {"error": "not found"}
        if self.unavailable_once:
            self.unavailable_once = False
            return 503, {"error": "overloaded"}
        self.requests.append(request.body)
        if self.fail_from is not None and len(self.requests) > self.fail_from:
            return 400, {"error": "bad request"}
        question = request.body["messages"][1]["content"].splitlines()[0].removeprefix("问题：")
        return 200, completion(f"关于“{question}”：根据已知事实作答。" + ("每次2片，一日三次。" if self.dose else ""))


@pytest.fixture
def server() -> Iterator[AnsweringServer]:
    fake = AnsweringServer()
    with serving(fake):
        yield fake


def test_prompt_is_grounded_in_the_records_facts() -> None:
    record = next(r for r in generate_instructions(GRAPH) if r["kind"] == "multi")
    prompt = teacher_prompt(record)
    assert prompt.splitlines()[0] == f"问题：{record['instruction']}" and "已知事实：" in prompt
    assert "- 感冒的症状：发热、鼻塞" in prompt or "- 感冒的常用药物：解热镇痛药" in prompt
    assert cache_key("m", SYSTEM_PROMPT, prompt) != cache_key("other", SYSTEM_PROMPT, prompt)


def test_answers_are_cached_and_a_second_run_asks_nothing(server: AnsweringServer, tmp_path: Path) -> None:
    records = generate_instructions(GRAPH)
    teacher = answer_teacher(server.url, "fake-7b", TeacherCache(tmp_path / "cache.jsonl"), api_key="k")
    rewritten = with_teacher_answers(records, teacher)
    assert teacher.calls == len(records) == len(server.requests)
    assert server.requests[0]["model"] == "fake-7b" and server.requests[0]["messages"][0]["content"] == SYSTEM_PROMPT
    for before, after in zip(records, rewritten, strict=True):
        assert after["answer_source"] == "teacher" and after["instruction"] == before["instruction"]
        assert after["output"].startswith(f"关于“{before['instruction']}”")
        assert after["facts"] == before["facts"] and "要点" not in after["output"]
        assert format_record(after).reference["facts"] == format_record(before).reference["facts"]

    again = answer_teacher(server.url, "fake-7b", TeacherCache(tmp_path / "cache.jsonl"))
    assert with_teacher_answers(records, again) == rewritten and again.calls == 0


def test_a_crash_loses_nothing(server: AnsweringServer, tmp_path: Path) -> None:
    records = generate_instructions(GRAPH)
    cache_path = tmp_path / "cache.jsonl"
    server.fail_from = 3
    with pytest.raises(PixiuError, match=r"HTTP 400.*running the same command again resumes"):
        with_teacher_answers(records, answer_teacher(server.url, "fake", TeacherCache(cache_path)))
    assert len(cache_path.read_text(encoding="utf-8").splitlines()) == 3
    with cache_path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn by a cra')  # the process died in the middle of a write
    server.fail_from = None
    resumed = answer_teacher(server.url, "fake", TeacherCache(cache_path))
    with_teacher_answers(records, resumed)
    assert resumed.calls == len(records) - 3


def test_transient_errors_are_retried_then_reported(server: AnsweringServer, tmp_path: Path) -> None:
    waits: list[float] = []
    teacher = answer_teacher(server.url, "fake", TeacherCache(tmp_path / "c.jsonl"), sleep=waits.append)
    server.unavailable_once = True
    assert teacher.ask("问题：感冒吃什么药？").startswith("关于")
    assert teacher.calls == 2 and waits == [1]
    gone = answer_teacher(
        "http://127.0.0.1:9/v1", "fake", TeacherCache(tmp_path / "d.jsonl"), retries=1, sleep=waits.append
    )
    with pytest.raises(PixiuError, match=r"cannot reach teacher .* Is the server running"):
        gone.ask("问题：感冒吃什么药？")


def test_a_dose_without_advice_gets_the_advice(server: AnsweringServer, tmp_path: Path) -> None:
    server.dose = True
    record = next(r for r in generate_instructions(GRAPH) if r["facts"][0][1] == "drug")
    (rewritten,) = with_teacher_answers(
        [record], answer_teacher(server.url, "fake", TeacherCache(tmp_path / "c.jsonl"))
    )
    assert DOSE_ADVICE in rewritten["output"] and not unsafe_dose(rewritten["output"])
    assert rewritten["output"].endswith(DOSE_ADVICE) and format_record(rewritten).reference["facts"] == ["解热镇痛药"]


def test_instructions_command_with_a_teacher(server: AnsweringServer, tmp_path: Path) -> None:
    kg, out = tmp_path / "kg.jsonl", tmp_path / "train.jsonl"
    write_jsonl(kg, GRAPH)
    args = ["instructions", str(kg), str(out), "--teacher-url", server.url, "--teacher-model", "fake"]
    first = CliRunner().invoke(group, args)
    assert first.exit_code == 0, first.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(r["answer_source"] == "teacher" for r in rows)
    assert (tmp_path / "train.teacher-cache.jsonl").is_file() and f"teacher requests made: {len(rows)}" in first.output
    second = CliRunner().invoke(group, args)
    assert "teacher requests made: 0" in second.output and out.read_text(encoding="utf-8").count("\n") == len(rows)
