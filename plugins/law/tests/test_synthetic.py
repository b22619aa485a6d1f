"""The synthetic sample data: deterministic, well-formed, and identical to the shipped file."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pixiu_law
from pixiu_law.answer import LawAnswer
from pixiu_law.formatter import LawSettings, format_record
from pixiu_law.parser import parse_answer, parse_charges
from pixiu_law.synthetic import ARTICLES, DEFAULT_COUNT, TEMPLATES, TERM_MONTHS, generate, to_jsonl

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


FACTS_AND_CHARGES_SHA256 = "f63e5a8b6c875d79f82fe35fe65bc7676817297a131063d397d26ea57142d2fe"
"""sha256 of the JSON list of [fact, accusation] of the default sample, as shipped before it gained articles and
terms: charge-only results on the sample must not move when the meta grows."""


def test_facts_and_charges_are_those_of_the_charges_only_sample() -> None:
    pairs = [[r["fact"], r["meta"]["accusation"]] for r in generate()]
    digest = hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()
    assert digest == FACTS_AND_CHARGES_SHA256


def test_articles_and_terms_follow_the_charges() -> None:
    assert set(ARTICLES) == set(TERM_MONTHS) == set(TEMPLATES)
    tasks = LawSettings(tasks=["charges", "articles", "term"])
    for record in generate(300):
        meta = record["meta"]
        charges = meta["accusation"]
        assert meta["relevant_articles"] == sorted({ARTICLES[c] for c in charges})
        term = meta["term_of_imprisonment"]
        assert term["death_penalty"] is False and term["life_imprisonment"] is False
        ranges = [TERM_MONTHS[c] for c in charges]
        assert max(low for low, _ in ranges) <= term["imprisonment"] <= sum(high for _, high in ranges)
        expected = LawAnswer(frozenset(charges), frozenset(meta["relevant_articles"]), term["imprisonment"])
        assert parse_answer(format_record(record, tasks).messages[-1]["content"]) == expected
