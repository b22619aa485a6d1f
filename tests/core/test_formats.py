"""pixiu.formats: each record format read into chat messages or pairs, each bad row's reason, and detection."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from pixiu.config import DataArgs, formatter_for, load_config
from pixiu.errors import BadRecord, DataError
from pixiu.formats import DATA_FORMATS, detect_format, pair_row, record_formatter, to_messages
from pixiu.records import load_examples
from toy_domain import TOY


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


ALPACA = {"instruction": "翻译成英文。", "input": "你好", "output": "Hello", "system": "简短回答。"}
SHAREGPT = {
    "system": "Be brief.",
    "conversations": [
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Hello!"},
        {"from": "user", "value": "2+2?"},
        {"from": "chatgpt", "value": "4"},
    ],
}
MESSAGES = {"messages": [system("Be brief."), user("Capital of France?"), assistant("Paris.")]}


def test_an_alpaca_row_joins_instruction_and_input_after_its_system_and_history() -> None:
    row = {**ALPACA, "history": [["一", "one"]]}
    assert to_messages(row) == [
        system("简短回答。"),
        user("一"),
        assistant("one"),
        user("翻译成英文。\n你好"),
        assistant("Hello"),
    ]
    assert to_messages({"instruction": "说你好。", "input": " ", "output": "你好"}) == [
        user("说你好。"),
        assistant("你好"),
    ]


def test_a_sharegpt_row_keeps_every_turn_and_its_system_prompt() -> None:
    assert to_messages(SHAREGPT) == [system("Be brief."), user("Hi"), assistant("Hello!"), user("2+2?"), assistant("4")]
    role_content = {"conversations": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert to_messages(role_content) == [user("a"), assistant("b")]


def test_a_messages_row_reads_developer_as_system_and_joins_text_parts() -> None:
    row = {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Capital "}, {"type": "text", "text": "of Peru?"}]},
            {"role": "assistant", "content": "Lima.", "weight": 1},
        ]
    }
    assert to_messages(row) == [system("Be brief."), user("Capital of Peru?"), assistant("Lima.")]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"instruction": "x", "output": " "}, "'output' is empty"),
        ({"instruction": "x"}, "'output' is missing"),
        ({"instruction": 3, "output": "y"}, "'instruction' must be text, not 3"),
        ({"instruction": "x", "output": "y", "history": [["q"]]}, r"history\[0\] must be a \[question, answer\] pair"),
        ({"instruction": "x", "output": "y", "history": [["q", ""]]}, r"history\[0\] has an empty answer"),
        (
            {"conversations": [{"from": "gpt", "value": "hi"}]},
            r"conversations\[0\] is assistant; a conversation starts",
        ),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "human", "value": "b"}]},
            r"conversations\[1\] is user after user; user and assistant turns must alternate",
        ),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "  "}]},
            r"\[1\] \(assistant\) is empty",
        ),
        ({"conversations": [{"from": "human", "value": "a"}]}, "ends with a user turn: no final assistant answer"),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "robot", "value": "b"}]},
            r"unknown 'from' value 'robot'; expected one of human, user, gpt",
        ),
        (
            {"conversations": [{"from": "human", "value": "a"}, {"from": "function_call", "value": "{}"}]},
            "'function_call' turn: tool and function calls are not supported",
        ),
        ({"conversations": "hi"}, "'conversations' must be a list of turns"),
        (
            {"system": "s", "conversations": [{"from": "system", "value": "t"}, {"from": "human", "value": "a"}]},
            "both a top-level 'system' and a system turn",
        ),
        (
            {"messages": [user("a"), assistant("b"), system("late"), assistant("c")]},
            r"messages\[2\] is a system turn; a system message may only come first",
        ),
        ({"messages": [user("a"), {"role": "tool", "content": "42"}]}, "'tool' turn: tool and function calls"),
        (
            {"messages": [user("a"), {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]},
            "tool and function calls are not supported",
        ),
        ({"messages": [user("a"), {"role": "bot", "content": "b"}]}, "unknown role 'bot'; expected one of system"),
        ({"messages": [user("a"), {"role": "assistant"}]}, r"messages\[1\] has no text \(missing\)"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}, assistant("b")]}, "'image_url' part"),
        ({"messages": [system("only")]}, "holds no user or assistant turn"),
        ({"question": "q", "answer": "a"}, "fits no format: tried alpaca .*; the row's fields are answer, question"),
        ({"prompt": "q", "chosen": "a", "rejected": "b"}, "preference pair .* --method dpo, rm or kto"),
    ],
)
def test_each_bad_row_says_what_is_wrong(row: dict, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        to_messages(row)


def test_detection_goes_by_each_formats_fields() -> None:
    assert [detect_format(row) for row in (ALPACA, SHAREGPT, MESSAGES)] == ["alpaca", "sharegpt", "messages"]


def test_a_named_format_refuses_rows_of_another_and_names_their_fields() -> None:
    assert record_formatter("sharegpt")(SHAREGPT)[-1] == assistant("4")
    with pytest.raises(BadRecord, match=r"data\.format is alpaca, .* lacks instruction; its fields are messages"):
        record_formatter("alpaca")(MESSAGES)


def test_the_data_formats_are_the_config_keys_values() -> None:
    assert typing.get_args(DataArgs.model_fields["format"].annotation) == DATA_FORMATS


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def test_auto_reads_a_mixed_file_and_stops_at_a_bad_row_with_its_file_and_line(tmp_path) -> None:
    path = tmp_path / "mixed.jsonl"
    write_jsonl(path, [ALPACA, SHAREGPT, MESSAGES])
    examples = load_examples(path, record_formatter("auto")).items
    assert [e.messages[-1]["content"] for e in examples] == ["Hello", "4", "Paris."]
    assert all(e.reference is None for e in examples) and examples[2].where == f"{path}:3"
    write_jsonl(path, [ALPACA, {"conversations": [{"from": "human", "value": "a"}]}, {"q": "x"}])
    with pytest.raises(DataError, match=rf"{path}:2: conversations ends with a user turn"):
        load_examples(path, record_formatter("auto"))
    skipped = load_examples(path, record_formatter("auto"), on_bad_record="skip", rejects_path=tmp_path / "r.jsonl")
    assert len(skipped.items) == 1 and skipped.rejected == 2
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert "fits no format" in reasons[1] and "fields are q" in reasons[1]


def test_data_format_domain_keeps_the_domains_formatter_and_a_format_name_replaces_it() -> None:
    assert formatter_for(TOY, load_config()) is TOY.formatter
    reader = formatter_for(TOY, load_config(overrides=["data.format=messages"]))
    assert reader(MESSAGES) == MESSAGES["messages"]
    with pytest.raises(BadRecord, match=r"data\.format is messages"):
        reader({"q": "什么颜色？", "a": "红"})


PAIRS = {
    "trl text": {"prompt": "2+2?", "chosen": "4", "rejected": "5"},
    "trl implicit prompt": {"chosen": [user("2+2?"), assistant("4")], "rejected": [user("2+2?"), assistant("5")]},
    "alpaca": {"instruction": "2+2?", "input": "", "chosen": "4", "rejected": "5"},
    "sharegpt": {
        "conversations": [{"from": "human", "value": "2+2?"}],
        "chosen": {"from": "gpt", "value": "4"},
        "rejected": {"from": "gpt", "value": "5"},
    },
    "messages": {"messages": [user("2+2?")], "chosen": assistant("4"), "rejected": "5"},
}


@pytest.mark.parametrize("form", list(PAIRS))
def test_every_pair_form_becomes_a_trl_row(form: str) -> None:
    row = pair_row(PAIRS[form])
    assert (row["chosen"], row["rejected"]) == ("4", "5")
    assert row["prompt"] in ("2+2?", [user("2+2?")])


@pytest.mark.parametrize(
    ("row", "fmt", "reason"),
    [
        (
            {"question": "q", "good": "a"},
            "auto",
            "no preference pair pixiu reads: tried trl .*fields are good, question",
        ),
        (PAIRS["sharegpt"], "alpaca", "data.format is alpaca, but this row is a sharegpt pair"),
        (
            {"chosen": [user("a"), assistant("b")], "rejected": [user("x"), assistant("c")]},
            "auto",
            "chosen and rejected differ before their last message",
        ),
        ({**PAIRS["sharegpt"], "chosen": {"from": "human", "value": "4"}}, "auto", "'chosen' is a user turn"),
        (
            {
                "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
                "chosen": "b",
                "rejected": "c",
            },
            "auto",
            "ends with an assistant turn; the prompt of a pair ends with the user's turn",
        ),
        ({"instruction": "q", "chosen": "a"}, "auto", "'rejected' is missing"),
    ],
)
def test_each_bad_pair_row_says_what_is_wrong(row: dict, fmt: str, reason: str) -> None:
    with pytest.raises(BadRecord, match=reason):
        pair_row(row, fmt)


SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""Real public data beside the checkout (never shipped; the test skips when it is absent)."""


def test_every_row_of_huatuos_public_alpaca_file_reads_as_alpaca() -> None:
    path = SHARED_DATA / "medical" / "huatuo_llama_data.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    examples = load_examples(path, record_formatter("alpaca")).items
    assert len(examples) == 8658  # SOURCES.md's count: not one row refused
    assert all([m["role"] for m in e.messages] == ["user", "assistant"] for e in examples)
