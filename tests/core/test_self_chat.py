"""Self-chat against a scripted teacher on loopback: transcript parsing, malformed dialogues, seeds from a domain."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pixiu.cli import cli
from pixiu.self_chat import parse_dialogue
from scripted_teacher import scripted_teacher, user_text
from toy_domain import write_toy_data

GOOD = "[Human] Hello!\n[AI] Hi! How can I help you?\n[Human] What is it?\n[AI] A thing.\n[Human] Why?\n[AI] Because."


def test_a_transcript_becomes_alternating_sharegpt_turns() -> None:
    text = "Sure:\n[Human] Hello!\n[AI] Hi! How can I help you?\n[|Human|] What is tea?\n[|AI|] A drink.\n"
    text += "[Human]: More?\n[AI]: Green and black.\n[Human] And coffee?"
    assert parse_dialogue(text) == [
        {"from": "human", "value": "What is tea?"},
        {"from": "gpt", "value": "A drink."},
        {"from": "human", "value": "More?"},
        {"from": "gpt", "value": "Green and black."},
    ], "the greeting and the unanswered last question are cut"
    assert parse_dialogue(text, max_turns=1) == [
        {"from": "human", "value": "What is tea?"},
        {"from": "gpt", "value": "A drink."},
    ]


def test_the_last_turn_of_a_truncated_transcript_is_cut() -> None:
    text = "[Human] What is tea?\n[AI] A drink.\n[Human] Which kinds?\n[AI] Green, black and oo"
    assert parse_dialogue(text, truncated=True) == [
        {"from": "human", "value": "What is tea?"},
        {"from": "gpt", "value": "A drink."},
    ]
    assert len(parse_dialogue(text) or []) == 4


def test_malformed_transcripts_do_not_parse() -> None:
    assert parse_dialogue("I cannot write that conversation.") is None
    assert parse_dialogue("[Human] Hello!\n[AI] Hi! How can I help you?") is None, "nothing after the greeting"
    repeated = "[Human] Hello!\n[AI] Hi! How can I help you?\n\nThe AI is not here to answer your questions."
    assert parse_dialogue(repeated) is None, "a greeting with more words from the AI (SmolLM2-135M's) is no dialogue"
    assert parse_dialogue("[Human] Why?\n[AI] Because.\n[AI] Also this.") is None
    assert parse_dialogue("[Human] Why?\n[AI]\n[Human] Well?\n[AI] Yes.") is None, "an empty turn"
    assert parse_dialogue("[AI] I start.\n[Human] Odd.\n[AI] Yes.") is None


def test_self_chat_writes_sharegpt_and_counts_malformed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("tea\n\ncoffee\n什么是绿茶？\n", encoding="utf-8")
    output = tmp_path / "chats.jsonl"

    def script(body: dict) -> str:
        prompt = user_text(body)
        return "no markers here" if "coffee" in prompt else GOOD

    command = ["data", "self-chat", "--seeds", str(seeds), "--output", str(output), "--max-turns", "1"]
    command += ["--teacher-model", "t", "--teacher-url"]
    with scripted_teacher(script) as fake:
        result = CliRunner().invoke(cli, [*command, fake.url])
        assert result.exit_code == 0, result.output
        assert "2 dialogues written" in result.output and "1 malformed dropped" in result.output
        written = output.read_bytes()
        again = CliRunner().invoke(cli, [*command, fake.url])
    assert "teacher requests made: 0" in again.output and output.read_bytes() == written and len(fake.requests) == 3
    prompts = [user_text(body) for body in fake.requests]
    assert "topic: 'tea'" in prompts[0] and "话题轮流交谈：“什么是绿茶？”" in prompts[2], (
        "Baize's template, in Chinese too"
    )
    rows = [json.loads(line) for line in output.read_text("utf-8").splitlines()]
    assert [row["seed"] for row in rows] == ["tea", "什么是绿茶？"]
    assert all([turn["from"] for turn in row["conversations"]] == ["human", "gpt"] for row in rows)


def test_seeds_may_be_a_domain_s_user_turns(tmp_path: Path, toy_plugin: str) -> None:
    data = write_toy_data(tmp_path / "toy.jsonl", 3)
    questions = [json.loads(line)["q"] for line in data.read_text("utf-8").splitlines()]
    output = tmp_path / "chats.jsonl"
    with scripted_teacher(lambda body: GOOD) as fake:
        command = ["data", "self-chat", "--domain", "toy", "--data", str(data), "--output", str(output)]
        result = CliRunner().invoke(cli, [*command, "--teacher-url", fake.url, "--teacher-model", "t", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert [f"“{q}”" in user_text(body) for q, body in zip(questions, fake.requests, strict=False)] == [True, True]
    assert len(fake.requests) == 2 and len(output.read_text("utf-8").splitlines()) == 2
