"""The synthetic sample data: deterministic, well-formed, and identical to the shipped file."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pixiu_law
from pixiu_law.formatter import format_record
from pixiu_law.parser import parse_charges
from pixiu_law.synthetic import DEFAULT_COUNT, TEMPLATES, generate, to_jsonl

SHIPPED = Path(pixiu_law.__file__).resolve().parent / "sample_data" / "cail_synthetic.jsonl"


def test_shipped_file_is_the_generator_output() -> None:
    assert SHIPPED.read_bytes() == to_jsonl(generate()).encode("utf-8")


def test_module_entry_point_writes_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    subprocess.run([sys.executable, "-m", "pixiu_law.synthetic", "--n", "50", "--output", str(out)], check=True)
    assert out.read_bytes() == to_jsonl(generate(50)).encode("utf-8")
    stdout = subprocess.run([sys.executable, "-m", "pixiu_law.synthetic", "--n", "50"], check=True, capture_output=True)
    assert stdout.stdout == out.read_bytes()


def test_same_seed_same_records_other_seed_other_records() -> None:
    assert generate(100, seed=7) == generate(100, seed=7)
    assert generate(100, seed=7) != generate(100, seed=8)


def test_records_are_well_formed() -> None:
    records = generate()
    assert len(records) == DEFAULT_COUNT
    assert len({r["fact"] for r in records}) == len(records)
    assert all(r["synthetic"] is True for r in records)
    sizes = Counter(len(r["meta"]["accusation"]) for r in records)
    assert set(sizes) == {1, 2} and 0.05 < sizes[2] / len(records) < 0.15
    assert {c for r in records for c in r["meta"]["accusation"]} == set(TEMPLATES)
    lengths = sorted(len(r["fact"]) for r in records)
    assert lengths[0] >= 30 and lengths[len(lengths) // 2] <= 120 and lengths[-1] <= 160
    for record in records:
        answer = format_record(record).messages[-1]["content"]
        assert parse_charges(answer) == set(record["meta"]["accusation"])
