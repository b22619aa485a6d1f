"""Distillation against a scripted teacher on loopback: SFT rows in OpenAI messages form, and DPO pairs whose
rejected side is a tiny student model's greedy answer, read back by pixiu's preference loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu.cli import cli
from pixiu.plugins import get_domain
from pixiu.preference import load_preferences
from scripted_teacher import scripted_teacher, user_text
from toy_domain import write_toy_data


def teacher_script(body: dict) -> str | tuple[str, str]:
    """The teacher's answer: blank for the second toy question, cut at the token limit for the third, else a
    sentence naming the question."""
    question = user_text(body)
    if question.startswith("第1个"):
        return "   "
    return ("答案：第", "length") if question.startswith("第2个") else f"  答案：{question[:6]}  "


def distill(data: Path, output: Path, url: str, *extra: str):
    command = ["data", "distill", "toy", "--data", str(data), "--output", str(output), "--teacher-url", url]
    return CliRunner().invoke(cli, [*command, "--teacher-model", "t", *extra])


def test_distill_writes_messages_rows_of_the_teacher_s_answers(tmp_path: Path, toy_plugin: str) -> None:
    data = write_toy_data(tmp_path / "toy.jsonl", 4)
    questions = [json.loads(line)["q"] for line in data.read_text("utf-8").splitlines()]
    output = tmp_path / "sft.jsonl"
    with scripted_teacher(teacher_script) as fake:
        result = distill(data, output, fake.url)
    assert result.exit_code == 0, result.output
    assert "2 examples written" in result.output and "2 left out (blank, or cut at --max-tokens)" in result.output
    assert [body["messages"] for body in fake.requests] == [[{"role": "user", "content": q}] for q in questions]
    assert all(body["temperature"] == 0 for body in fake.requests)
    rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert rows == [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"答案：{q[:6]}"}]}
        for q in (questions[0], questions[3])
    ]


@pytest.fixture
def chatty_model_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A tiny random model that cannot write whitespace tokens (the plain one answers blank lines, which strip to
    nothing): its greedy answers are non-empty junk, a student's rejected side."""
    from pixiu.models import load_base

    folder = tmp_path / "chatty"
    model, tokenizer = load_base(str(tiny_model_dir))
    blank = [i for i in tokenizer.get_vocab().values() if not tokenizer.decode([i]).strip()]
    model.get_output_embeddings().weight.data[blank] = 0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_distill_pairs_load_as_dpo_data_and_resume(
    tmp_path: Path, toy_plugin: str, chatty_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_toy_data(tmp_path / "toy.jsonl", 4)
    output = tmp_path / "pairs.jsonl"
    pairs = ["--pairs", "--base", str(chatty_model_dir), "--device", "cpu", "--max-new-tokens", "6"]
    with scripted_teacher(lambda body: "答案：" + user_text(body)[:6]) as fake:
        result = distill(data, output, fake.url, *pairs)
        assert result.exit_code == 0, result.output
        written = output.read_bytes()

        def no_generation(*args, **kwargs):
            raise AssertionError("the student's cached answers were generated again")

        monkeypatch.setattr("pixiu.generate.generate_answers", no_generation)
        again = distill(data, output, fake.url, *pairs)
    assert again.exit_code == 0, again.output
    assert "teacher requests made: 0" in again.output and output.read_bytes() == written and len(fake.requests) == 4
    assert "4 pairs written" in result.output
    rows = [json.loads(line) for line in written.decode("utf-8").splitlines()]
    assert all(set(row) == {"prompt", "chosen", "rejected"} and row["rejected"].strip() for row in rows)
    assert all(row["chosen"].startswith("答案：") and row["prompt"][-1]["role"] == "user" for row in rows)
    assert len((tmp_path / "pairs.student-cache.jsonl").read_text("utf-8").splitlines()) == 4
    loaded = load_preferences(output, get_domain("toy"))
    assert [pair.chosen for pair in loaded.items] == [row["chosen"] for row in rows] and loaded.rejected == 0
