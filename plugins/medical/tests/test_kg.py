"""Knowledge graph: crawled records -> triples, merged across pages, counted, and the `pixiu medical kg` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu import PixiuError
from pixiu_medical.commands import group
from pixiu_medical.kg import (
    build_kg,
    facts_by_head,
    kg_stats,
    merge_triples,
    normalize_term,
    read_kg,
    triples_from_disease,
)

FLU = {
    "name": "感冒",
    "url": "p101",
    "overview": "感冒是常见病。",
    "symptoms": ["发热", " 鼻塞、", "流涕等"],
    "drugs": ["维生素Ｃ"],
    "complications": ["肺炎", "感冒"],
    "departments": ["呼吸内科"],
}
FLU_AGAIN = {"name": "感冒", "url": "p104", "symptoms": ["鼻塞", "头痛"], "complications": ["肺炎"]}
HYPERTENSION = {"name": "高血压", "url": "p102", "symptoms": ["头晕", "头痛"], "causes": ["高盐饮食"]}


def test_normalize_term() -> None:
    assert normalize_term(" 发热、") == "发热" and normalize_term("维生素Ｃ") == "维生素C"
    assert normalize_term("流涕等") == "流涕" and normalize_term("等") == "等" and normalize_term("，") == ""


def test_triples_of_one_record() -> None:
    triples = triples_from_disease(FLU)
    assert [(t["relation"], t["tail"]) for t in triples] == [
        ("overview", "感冒是常见病。"),
        ("symptom", "发热"),
        ("symptom", "鼻塞"),
        ("symptom", "流涕"),
        ("drug", "维生素C"),
        ("complication", "肺炎"),
        ("department", "呼吸内科"),  # a self-reference is left out
    ]
    assert triples[1] == {
        "head": "感冒",
        "head_type": "disease",
        "relation": "symptom",
        "tail": "发热",
        "tail_type": "symptom",
        "sources": ["p101"],
    }
    assert triples_from_disease({"url": "x", "symptoms": ["发热"]}) == []


def test_merge_dedupes_across_pages_and_keeps_a_stable_order() -> None:
    merged = merge_triples(t for r in (HYPERTENSION, FLU, FLU_AGAIN) for t in triples_from_disease(r))
    assert merge_triples(merged) == merged  # idempotent
    facts = facts_by_head(merged)
    assert list(facts) == ["高血压", "感冒"]
    assert facts["感冒"]["symptom"] == ["发热", "鼻塞", "流涕", "头痛"]
    sources = {(t["head"], t["tail"]): t["sources"] for t in merged}
    assert sources[("感冒", "鼻塞")] == ["p101", "p104"] and sources[("感冒", "肺炎")] == ["p101", "p104"]
    with pytest.raises(PixiuError, match="unknown relation 'cures'"):
        merge_triples([{"head": "a", "relation": "cures", "tail": "b"}])


def test_stats_count_entities_by_type_and_facts_by_relation() -> None:
    stats = kg_stats(merge_triples([*triples_from_disease(FLU), *triples_from_disease(HYPERTENSION)]))
    assert stats == {
        # 感冒 高血压 肺炎 (complications are diseases); 头痛 is one symptom entity for both diseases
        "entities": 11,
        "entity_types": {"cause": 1, "department": 1, "disease": 3, "drug": 1, "symptom": 5},
        "relations": 10,
        "relation_counts": {"cause": 1, "complication": 1, "department": 1, "drug": 1, "overview": 1, "symptom": 5},
        "diseases_with_facts": 2,
    }


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_build_from_several_feeds_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    one = write_lines(tmp_path / "a.jsonl", [json.dumps(FLU, ensure_ascii=False), json.dumps({"name": "空"})])
    two = write_lines(tmp_path / "b.jsonl", [json.dumps(FLU_AGAIN, ensure_ascii=False), '{"name": "高血'])
    triples, unusable = build_kg([one, two])
    assert unusable == 2 and facts_by_head(triples)["感冒"]["symptom"] == ["发热", "鼻塞", "流涕", "头痛"]
    with pytest.raises(PixiuError, match="crawled file not found"):
        build_kg([tmp_path / "missing.jsonl"])


def test_read_kg_errors_say_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(PixiuError, match="pixiu medical kg build"):
        read_kg(tmp_path / "none.jsonl")
    with pytest.raises(PixiuError, match=r"bad.jsonl:2: not a knowledge-graph triple"):
        read_kg(write_lines(tmp_path / "bad.jsonl", ['{"head": "a", "relation": "symptom", "tail": "b"}', '{"x": 1}']))


def test_kg_commands(tmp_path: Path) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in (FLU, FLU_AGAIN, HYPERTENSION)]
    raw = write_lines(tmp_path / "raw.jsonl", lines)
    built = CliRunner().invoke(group, ["kg", "build", str(raw), str(tmp_path / "kg.jsonl")])
    assert built.exit_code == 0, built.output
    assert built.output.startswith("11 entities and 11 relations written to")  # 鼻塞 and 肺炎 once each
    shown = CliRunner().invoke(group, ["kg", "stats", str(tmp_path / "kg.jsonl")])
    assert "11 entities, 11 relations, 2 diseases with facts" in shown.output and "symptom 6" in shown.output
    bundled = CliRunner().invoke(group, ["kg", "stats", "--json"])
    assert json.loads(bundled.output)["diseases_with_facts"] == 70
