"""Preference pairs from votes: margin and ratio, chosen/rejected order, and the JSONL form."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pixiu_zhihu.commands import group
from pixiu_zhihu.pairs import preference_pairs

RECORD = {
    "question_id": "1001",
    "title": "如何坚持每天早起？",
    "detail": "试过很多次。",
    "answers": [
        {"answer_id": "a", "text": "把闹钟放远。", "voteup_count": 45},
        {"answer_id": "b", "text": "早点睡觉。", "voteup_count": 120},
        {"answer_id": "c", "text": "逐步提前。", "voteup_count": 8},
        {"answer_id": "d", "text": "给早起一个期待。", "voteup_count": 300},
        {"answer_id": "e", "text": "早点睡觉。", "voteup_count": 100},  # same text as b: never paired with it
        {"answer_id": "f", "text": "", "voteup_count": 0},  # no text: never paired
    ],
}


def ids(pairs: list[dict]) -> list[tuple[str, str]]:
    return [(p["meta"]["chosen_id"], p["meta"]["rejected_id"]) for p in pairs]


def test_pairs_clearest_contrast_first() -> None:
    pairs = preference_pairs(RECORD, margin=10, ratio=2.0)
    assert ids(pairs) == [
        ("d", "c"),
        ("d", "a"),
        ("d", "e"),
        ("d", "b"),
        ("b", "c"),
        ("b", "a"),
        ("e", "c"),
        ("e", "a"),
        ("a", "c"),
    ]
    first = pairs[0]
    assert first == {
        "prompt": "如何坚持每天早起？\n试过很多次。",
        "chosen": "给早起一个期待。",
        "rejected": "逐步提前。",
        "meta": {"question_id": "1001", "chosen_id": "d", "rejected_id": "c", "chosen_votes": 300, "rejected_votes": 8},
    }
    assert all(p["meta"]["chosen_votes"] > p["meta"]["rejected_votes"] for p in pairs)


def test_margin_ratio_and_cap() -> None:
    by_margin = [("d", "c"), ("d", "a"), ("d", "e"), ("d", "b"), ("b", "c")]
    assert ids(preference_pairs(RECORD, margin=100, ratio=1.0)) == by_margin
    by_ratio = [("d", "c"), ("d", "a"), ("b", "c"), ("e", "c"), ("a", "c")]
    assert ids(preference_pairs(RECORD, margin=1, ratio=5.0)) == by_ratio
    assert ids(preference_pairs(RECORD, margin=10, ratio=2.0, max_pairs=2)) == [("d", "c"), ("d", "a")]
    assert preference_pairs(RECORD, margin=1000) == []
    assert preference_pairs({"title": "t", "answers": [{"text": "only one", "voteup_count": 99}]}) == []


def test_pairs_command_writes_jsonl(tmp_path: Path) -> None:
    raw = tmp_path / "raw.jsonl"
    hot = {"question_id": "2", "title": "热榜", "rank": 1}
    raw.write_text(json.dumps(RECORD, ensure_ascii=False) + "\n" + json.dumps(hot) + "\n", encoding="utf-8")
    out = tmp_path / "pairs" / "pairs.jsonl"
    result = CliRunner().invoke(group, ["pairs", str(raw), str(out), "--margin", "100", "--ratio", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == f"5 pairs from 1 questions written to {out}\n"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 5 and all(set(r) == {"prompt", "chosen", "rejected", "meta"} for r in rows)
    bad = CliRunner().invoke(group, ["pairs", str(raw), str(out), "--margin", "0"])
    assert bad.exit_code != 0 and "--margin" in bad.output


def test_the_domains_preference_formatter_pairs_the_sample_data_by_votes() -> None:
    from pixiu.preference import load_preferences
    from pixiu_zhihu import plugin
    from pixiu_zhihu.pairs import vote_preferences

    pairs = vote_preferences(RECORD)
    assert [(p.chosen, p.rejected) for p in pairs] == [(p["chosen"], p["rejected"]) for p in preference_pairs(RECORD)]
    assert pairs[0].prompt == [{"role": "user", "content": "如何坚持每天早起？\n试过很多次。"}]
    registered: list = []
    plugin.register_domains(register=registered.append)
    (domain,) = registered
    assert domain.preference_formatter is vote_preferences
    loaded = load_preferences(domain.sample_data, domain)
    assert len(loaded.items) > 1000 and loaded.rejected == 0  # what `pixiu domain train zhihu --method dpo` trains on


def test_a_record_without_answers_is_a_bad_record_for_preferences() -> None:
    import pytest

    from pixiu import BadRecord
    from pixiu_zhihu.pairs import vote_preferences

    with pytest.raises(BadRecord, match="answers"):
        vote_preferences({"title": "只有标题"})
