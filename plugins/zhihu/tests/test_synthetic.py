"""The synthetic sample data: deterministic, well-formed, compact, and identical to the shipped file."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pixiu_zhihu
from pixiu_zhihu.formatter import MAX_PROMPT_CHARS, format_record, top_answers
from pixiu_zhihu.synthetic import DEFAULT_COUNT, TOPICS, generate, to_jsonl

SHIPPED = Path(pixiu_zhihu.__file__).resolve().parent / "sample_data" / "zhihu_synthetic.jsonl"


def test_shipped_file_is_the_generator_output() -> None:
    assert SHIPPED.read_bytes() == to_jsonl(generate()).encode("utf-8")


def test_module_entry_point_writes_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "sample.jsonl"
    subprocess.run([sys.executable, "-m", "pixiu_zhihu.synthetic", "--n", "30", "--output", str(out)], check=True)
    assert out.read_bytes() == to_jsonl(generate(30)).encode("utf-8")
    command = [sys.executable, "-m", "pixiu_zhihu.synthetic", "--n", "30"]
    stdout = subprocess.run(command, check=True, capture_output=True)
    assert stdout.stdout == out.read_bytes()


def test_same_seed_same_records_other_seed_other_records() -> None:
    assert generate(50, seed=7) == generate(50, seed=7)
    assert generate(50, seed=7) != generate(50, seed=8)


def test_records_are_well_formed_and_compact() -> None:
    records = generate()
    assert len(records) == DEFAULT_COUNT and all(r["synthetic"] is True for r in records)
    assert len({r["question_id"] for r in records}) == len(records)
    assert set(Counter(len(r["answers"]) for r in records)) == {3, 4, 5, 6}
    assert {r["title"] for r in records} == {title for titles, _ in TOPICS for title in titles}
    assert all(15 <= len(r["summary"]) <= 30 for r in records)
    sentences = {phrase: pair for _, points in TOPICS for phrase, pair in points}
    for record in records:
        prompt, summary = (m["content"] for m in format_record(record)[1:])
        assert len(prompt) <= MAX_PROMPT_CHARS
        # the summary names 2-3 points, the first being what the most up-voted answer says
        first, rest = summary.removeprefix("高赞建议").removesuffix("。").split("，其次是")
        assert all(point in sentences for point in [first, *rest.split("和")])
        assert any(sentence in top_answers(record, 1)[0] for sentence in sentences[first])
