"""Real data from shared/data/medical: every Huatuo record and every dialogue row formats without error."""

from __future__ import annotations

import json

from pixiu_medical.dialogue import read_dialogue_csv
from pixiu_medical.formatter import format_record

from ._data import shared_or_skip


def test_every_huatuo_record_formats() -> None:
    path = shared_or_skip("huatuo_llama_data.jsonl")
    count = 0
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            messages = format_record(record).messages
            assert messages[1]["content"].startswith(record["instruction"].strip()[:10]) and messages[2]["content"]
            count += 1
    assert count > 8000


def test_every_dialogue_row_formats() -> None:
    rows = list(read_dialogue_csv(shared_or_skip("toyhom_neike_sample.csv")))
    assert len(rows) > 7000
    for row in rows:
        messages = format_record(row).messages
        assert messages[1]["content"] and messages[2]["content"]
