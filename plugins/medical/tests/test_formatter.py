"""Medical records -> chat messages: Huatuo instructions, KG instructions, dialogue rows; bad records -> BadRecord."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu import BadRecord, PixiuError
from pixiu_medical.commands import group
from pixiu_medical.dialogue import FIELDS, read_dialogue_csv
from pixiu_medical.formatter import SYSTEM_PROMPT, format_record

HUATUO = {
    "instruction": "患者男，28岁，关节部位红肿疼痛，排尿困难，近期有过微生物感染史。请问可能患的是什么疾病？",
    "input": "",
    "output": "可能患有反应性关节炎。建议到风湿免疫科就诊。",
}


def test_huatuo_record() -> None:
    assert format_record(HUATUO).messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": HUATUO["instruction"]},
        {"role": "assistant", "content": HUATUO["output"]},
    ]


def test_input_follows_the_instruction_and_whitespace_is_tidied() -> None:
    record = {"instruction": "请回答：", "input": "  感冒吃什么药？\r\n", "output": "  具体用药请遵医嘱。\u3000\n\n"}
    messages = format_record(record).messages
    assert messages[1]["content"] == "请回答：\n感冒吃什么药？" and messages[2]["content"] == "具体用药请遵医嘱。"


def test_kg_instruction_record_keeps_its_answer() -> None:
    record = {
        "instruction": "感冒有哪些症状？",
        "input": "",
        "output": "感冒常见症状有：发热、鼻塞。",
        "entity": "感冒",
        "kind": "single",
        "facts": [["感冒", "symptom", "发热"]],
        "synthetic": True,
    }
    assert [m["content"] for m in format_record(record).messages[1:]] == [
        "感冒有哪些症状？",
        "感冒常见症状有：发热、鼻塞。",
    ]


def test_the_reference_carries_the_records_facts_not_a_line_in_the_answer() -> None:
    record = {
        "instruction": "感冒有哪些症状？",
        "output": "发热和鼻塞都常见。",
        "kind": "single",
        "facts": [["感冒", "symptom", "发热"], ["感冒", "symptom", "鼻塞"], ["感冒", "overview", "常见病。"]],
    }
    example = format_record(record)
    assert example.reference == {"text": "发热和鼻塞都常见。", "facts": ["发热", "鼻塞"]}
    assert example.messages[-1]["content"] == "发热和鼻塞都常见。"
    reverse = {**record, "kind": "reverse", "facts": [["感冒", "symptom", "发热"], ["流感", "symptom", "发热"]]}
    assert format_record(reverse).reference["facts"] == ["感冒", "流感"]
    assert format_record(HUATUO).reference == {"text": HUATUO["output"], "facts": None}  # read from the text
    with pytest.raises(BadRecord, match="`facts` must be a list of"):
        format_record({**record, "facts": [["感冒", "smell", "发热"]]})


def test_dialogue_rows_use_ask_else_title() -> None:
    row = {
        "department": "心血管科",
        "title": "高血压能吃党参吗？",
        "ask": "我有高血压，可以喝党参泡水吗？",
        "answer": "可以适量。",
    }
    assert [m["content"] for m in format_record(row).messages[1:]] == ["我有高血压，可以喝党参泡水吗？", "可以适量。"]
    for ask in ("", "无", "  "):
        assert format_record({**row, "ask": ask}).messages[1]["content"] == "高血压能吃党参吗？"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (["not", "a", "dict"], "expected a JSON object"),
        ({"instruction": "感冒怎么办？"}, "field `output` is missing"),
        ({"instruction": " ", "output": "多喝水。"}, "field `instruction` is empty"),
        ({"instruction": "问", "input": 3, "output": "答"}, "field `input` must be a string"),
        ({"instruction": 42, "output": "答"}, "field `instruction` must be a string"),
        ({"title": "", "ask": "", "answer": "休息"}, r"field `title` is empty \(`ask` is empty too\)"),
        ({"title": "胃痛", "ask": "胃痛怎么办", "answer": ""}, "field `answer` is empty"),
        ({"name": "感冒", "symptoms": ["发热"], "url": "u"}, "crawled disease page.*pixiu medical kg build"),
        ({"question": "q", "answer_text": "a"}, "unknown record format.*found keys"),
    ],
)
def test_bad_records_say_what_is_wrong(record: object, message: str) -> None:
    with pytest.raises(BadRecord, match=message):
        format_record(record)  # type: ignore[arg-type]


CSV_TEXT = 'department,title,ask,answer\n消化科,胃痛怎么办？,"吃完饭胃痛，\n怎么办？",建议就医。\n内科,头晕,,注意休息\n'


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_dialogue_csv_in_either_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(CSV_TEXT.encode(encoding))
    rows = list(read_dialogue_csv(path))
    assert rows == [
        {"department": "消化科", "title": "胃痛怎么办？", "ask": "吃完饭胃痛，\n怎么办？", "answer": "建议就医。"},
        {"department": "内科", "title": "头晕", "ask": "", "answer": "注意休息"},
    ]
    assert [format_record(r).messages[1]["content"] for r in rows] == ["吃完饭胃痛，\n怎么办？", "头晕"]


def test_dialogue_csv_errors(tmp_path: Path) -> None:
    with pytest.raises(PixiuError, match="not found"):
        list(read_dialogue_csv(tmp_path / "none.csv"))
    (tmp_path / "x.csv").write_text("科室,问题,回答\n内科,头晕,休息\n", encoding="utf-8")
    with pytest.raises(PixiuError, match="header lacks department, title, ask, answer"):
        list(read_dialogue_csv(tmp_path / "x.csv"))


def test_csv_to_jsonl_command(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_bytes(CSV_TEXT.encode("gb18030"))
    result = CliRunner().invoke(group, ["csv-to-jsonl", str(tmp_path / "d.csv"), str(tmp_path / "d.jsonl")])
    assert result.exit_code == 0 and result.output == f"2 records written to {tmp_path / 'd.jsonl'}\n"
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [tuple(r) for r in rows] == [FIELDS, FIELDS] and rows[0]["answer"] == "建议就医。"
