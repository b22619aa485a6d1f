"""The synthetic sample data: deterministic, compact, labelled, and identical to the shipped files."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pixiu_medical
from pixiu.files import to_jsonl
from pixiu_medical.instructions import ADVICE
from pixiu_medical.kg import kg_stats, read_kg
from pixiu_medical.synthetic import generate, knowledge_graph

SAMPLE = Path(pixiu_medical.__file__).resolve().parent / "sample_data"


def test_shipped_files_are_the_generator_output() -> None:
    assert (SAMPLE / "kg_synthetic.jsonl").read_bytes() == to_jsonl(knowledge_graph()).encode("utf-8")
    assert (SAMPLE / "medical_synthetic.jsonl").read_bytes() == to_jsonl(generate()).encode("utf-8")


def test_module_entry_point_writes_the_same_bytes(tmp_path: Path) -> None:
    out, kg = tmp_path / "sample.jsonl", tmp_path / "kg.jsonl"
    command = [sys.executable, "-m", "pixiu_medical.synthetic", "--seed", "1", "--output", str(out), "--kg", str(kg)]
    subprocess.run(command, check=True)
    assert out.read_bytes() == to_jsonl(generate(seed=1)).encode("utf-8")
    assert kg.read_bytes() == (SAMPLE / "kg_synthetic.jsonl").read_bytes()


def test_same_seed_same_records_other_seed_other_phrasings() -> None:
    assert generate(seed=7) == generate(seed=7) and generate(seed=7) != generate(seed=8)


def test_graph_size_and_labels() -> None:
    graph = read_kg(SAMPLE / "kg_synthetic.jsonl")
    stats = kg_stats(graph)
    assert 40 <= stats["diseases_with_facts"] <= 80
    assert set(stats["relation_counts"]) == {
        "overview",
        "cause",
        "symptom",
        "examination",
        "treatment",
        "drug",
        "complication",
        "department",
    }
    assert all(t["sources"] == ["synthetic"] for t in graph)


def test_records_are_compact_labelled_and_advise_a_doctor() -> None:
    records = generate()
    assert 600 <= len(records) <= 1300 and len({r["instruction"] for r in records}) == len(records)
    assert all(r["synthetic"] is True for r in records)
    assert Counter(r["kind"] for r in records).keys() == {"single", "multi", "reverse"}
    assert max(len(r["instruction"]) + len(r["output"]) for r in records) <= 80
    for record in records:
        relations = {relation for _, relation, _ in record["facts"]}
        assert all(ADVICE[r] in record["output"] for r in relations & set(ADVICE))
