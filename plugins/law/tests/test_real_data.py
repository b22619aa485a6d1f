"""Real CAIL2018 records from shared/data: every one formats, and its answer parses back to its charges."""

from __future__ import annotations

import pytest

from pixiu_law.charges import normalize_charge
from pixiu_law.formatter import format_record
from pixiu_law.parser import parse_charges

from ._data import read_jsonl_or_skip


@pytest.mark.parametrize("name", ["cail2018_subset_train.jsonl", "cail2018_subset_test.jsonl"])
def test_every_cail_record_formats_and_round_trips(name: str) -> None:
    records = read_jsonl_or_skip(name)
    for line, record in enumerate(records, start=1):
        messages = format_record(record).messages
        gold = {normalize_charge(charge) for charge in record["meta"]["accusation"]}
        assert parse_charges(messages[-1]["content"]) == gold, f"{name} line {line}"
