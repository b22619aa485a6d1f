"""Instruction records from a knowledge graph: several phrasings, multi-fact and reverse questions, deterministic."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from click.testing import CliRunner

from pixiu.files import write_jsonl
from pixiu_medical.commands import group
from pixiu_medical.formatter import format_record
from pixiu_medical.instructions import ADVICE, MAX_CHARS, QUESTIONS, generate_instructions
from pixiu_medical.kg import merge_triples, triples_from_disease
from pixiu_medical.parser import list_facts

GRAPH = merge_triples(
    t
    for record in (
        {
            "name": "感冒",
            "overview": "感冒是常见的上呼吸道感染。",
            "symptoms": ["发热", "鼻塞", "流涕", "咳嗽", "咽痛"],
            "causes": ["病毒感染", "受凉"],
            "examinations": ["血常规"],
            "treatments": ["休息", "多饮水"],
            "drugs": ["解热镇痛药"],
            "complications": ["肺炎"],
            "departments": ["呼吸内科"],
        },
        {"name": "流行性感冒", "symptoms": ["高热", "发热", "鼻塞"], "departments": ["呼吸内科"]},
    )
    for t in triples_from_disease(record)
)


def stated(record: dict) -> list[str]:
    """The fact terms a record's answer should state, in order."""
    if record["kind"] == "reverse":
        return list(dict.fromkeys(head for head, _, _ in record["facts"]))
    return [tail for _, relation, tail in record["facts"] if relation != "overview"]


def test_several_phrasings_per_relation_with_the_same_facts() -> None:
    records = generate_instructions(GRAPH, phrasings=3, multi_fact=0, reverse=0)
    by_relation = defaultdict(list)
    for record in records:
        by_relation[(record["entity"], record["facts"][0][1])].append(record)
    assert len(by_relation[("感冒", "symptom")]) == 3 and len(by_relation[("感冒", "department")]) == 3
    symptom_questions = [r["instruction"] for r in by_relation[("感冒", "symptom")]]
    assert len(set(symptom_questions)) == 3
    assert all(q in {p.format(d="感冒") for p in QUESTIONS["symptom"]} for q in symptom_questions)
    assert {tuple(stated(r)) for r in by_relation[("感冒", "symptom")]} == {
        ("发热", "鼻塞", "流涕", "咳嗽")
    }  # 4 at most
    assert len(records) == len({r["instruction"] for r in records})


def test_every_answer_states_exactly_the_facts_of_its_reference() -> None:
    for record in generate_instructions(GRAPH, phrasings=2, multi_fact=3, reverse=2):
        assert record["input"] == "" and record["output"]
        facts = format_record(record).reference["facts"]
        assert (facts or []) == stated(record), record
        if facts:
            assert list_facts(record["output"]) == facts, record
        relations = {relation for _, relation, _ in record["facts"]}
        for relation, advice in ADVICE.items():
            assert (advice in record["output"]) == (relation in relations and record["kind"] != "reverse")


def test_multi_fact_and_reverse_questions() -> None:
    records = generate_instructions(GRAPH, phrasings=1, multi_fact=7, reverse=1)
    multi = [r for r in records if r["kind"] == "multi"]
    assert sum(r["entity"] == "感冒" for r in multi) == 7  # every multi-fact question 感冒 has the facts for
    assert [r["instruction"] for r in multi if r["entity"] == "流行性感冒"] == ["流行性感冒有什么表现，应该看哪个科？"]
    assert all(len({rel for _, rel, _ in r["facts"]}) >= 2 and r["output"].count("：") >= 2 for r in multi)
    assert all(len(r["instruction"]) + len(r["output"]) <= MAX_CHARS for r in records)
    (flu_reverse,) = [r for r in records if r["kind"] == "reverse" and r["entity"] == "流行性感冒"]
    # Two of 流行性感冒's symptoms; every disease with both is an answer.
    symptoms = {tail for _, _, tail in flu_reverse["facts"]}
    expected = ["感冒", "流行性感冒"] if symptoms <= {"发热", "鼻塞"} else ["流行性感冒"]
    assert stated(flu_reverse) == expected and flu_reverse["output"].startswith("可能的疾病有：")


def test_same_seed_same_records_other_seed_other_phrasings() -> None:
    assert generate_instructions(GRAPH, seed=3) == generate_instructions(GRAPH, seed=3)
    assert generate_instructions(GRAPH, seed=3) != generate_instructions(GRAPH, seed=4)


def test_instructions_command(tmp_path: Path) -> None:
    kg = tmp_path / "kg.jsonl"
    write_jsonl(kg, GRAPH)
    out = tmp_path / "train.jsonl"
    result = CliRunner().invoke(group, ["instructions", str(kg), str(out), "--phrasings", "1", "--multi-fact", "0"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert result.output == f"{len(rows)} instructions written to {out}\n"
    assert rows == generate_instructions(GRAPH, phrasings=1, multi_fact=0)
    lonely = CliRunner().invoke(group, ["instructions", str(kg), str(out), "--teacher-url", "http://127.0.0.1:9/v1"])
    assert lonely.exit_code != 0 and "--teacher-url and --teacher-model go together" in lonely.output
