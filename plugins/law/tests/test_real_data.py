"""Real CAIL2018 records from shared/data: each formats, and its answer parses back to its charges, articles, term."""

from __future__ import annotations

import pytest

from pixiu_law.answer import DEATH_PENALTY, LIFE_IMPRISONMENT, cail_term
from pixiu_law.charges import normalize_charge
from pixiu_law.formatter import LawSettings, format_record
from pixiu_law.metrics import law_metrics
from pixiu_law.parser import parse_answer, parse_charges

from ._data import read_jsonl_or_skip


@pytest.mark.parametrize("name", ["cail2018_subset_train.jsonl", "cail2018_subset_test.jsonl"])
def test_every_cail_record_formats_and_round_trips(name: str) -> None:
    records = read_jsonl_or_skip(name)
    for line, record in enumerate(records, start=1):
        messages = format_record(record).messages
        gold = {normalize_charge(charge) for charge in record["meta"]["accusation"]}
        assert parse_charges(messages[-1]["content"]) == gold, f"{name} line {line}"


@pytest.mark.parametrize("name", ["cail2018_subset_train.jsonl", "cail2018_subset_test.jsonl"])
def test_every_cail_record_formats_under_all_tasks_and_scores_full_marks(name: str) -> None:
    records = read_jsonl_or_skip(name)
    examples = [format_record(record, LawSettings(tasks=["charges", "articles", "term"])) for record in records]
    parsed = [parse_answer(example.messages[-1]["content"]) for example in examples]
    for line, (record, answer) in enumerate(zip(records, parsed, strict=True), start=1):
        meta = record["meta"]
        assert answer.articles == set(meta["relevant_articles"]), f"{name} line {line}"
        assert answer.term == cail_term(meta["term_of_imprisonment"]), f"{name} line {line}"
    scores = law_metrics(parsed, [example.reference for example in examples])
    assert scores["articles_cail_score"] == scores["term_score"] == scores["cail_score"] == 100.0
    assert {answer.term for answer in parsed} & {DEATH_PENALTY, LIFE_IMPRISONMENT}  # each subset holds some
