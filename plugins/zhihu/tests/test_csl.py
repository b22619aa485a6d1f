"""CSL (paper abstract -> title), a real Chinese summarisation stand-in: reading, converting, formatting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pixiu import PixiuError
from pixiu_zhihu.commands import group
from pixiu_zhihu.csl import read_csl_tsv
from pixiu_zhihu.formatter import CSL_SYSTEM_PROMPT, format_record
from pixiu_zhihu.parser import parse_summary

from ._data import csl_or_skip


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_csl_row_formats(split: str) -> None:
    rows = list(read_csl_tsv(csl_or_skip(split)))
    assert len(rows) == 1000
    for line, row in enumerate(rows, start=1):
        messages = format_record(row)
        assert messages[0]["content"] == CSL_SYSTEM_PROMPT and messages[1]["content"], f"row {line}"
        assert parse_summary(messages[2]["content"]) == row["title"], f"row {line}"


def test_csl_to_jsonl_command(tmp_path: Path) -> None:
    out = tmp_path / "csl_dev.jsonl"
    result = CliRunner().invoke(group, ["csl-to-jsonl", str(csl_or_skip("dev")), str(out)])
    assert result.exit_code == 0 and result.output == f"1000 records written to {out}\n"
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"abstract", "title"}
    assert first["title"] == "一种基于平方和优化的飞行器大角度机动镇定控制器设计方法"


def test_reader_accepts_two_columns_and_names_bad_lines(tmp_path: Path) -> None:
    tsv = tmp_path / "mini.tsv"
    tsv.write_text('to title\t摘要一，含"引号"。\t标题一\n\n摘要二\t标题二\r\n', encoding="utf-8")
    assert list(read_csl_tsv(tsv)) == [
        {"abstract": '摘要一，含"引号"。', "title": "标题一"},
        {"abstract": "摘要二", "title": "标题二"},
    ]
    tsv.write_text("to title\t摘要\t标题\nonly one column\n", encoding="utf-8")
    with pytest.raises(PixiuError, match=r"mini.tsv:2: expected 3 tab-separated columns .* found 1"):
        list(read_csl_tsv(tsv))
    tsv.write_text("to title\t\t标题\n", encoding="utf-8")
    with pytest.raises(PixiuError, match=r"mini.tsv:1: the abstract or the title is empty"):
        list(read_csl_tsv(tsv))
    with pytest.raises(PixiuError, match="no such file"):
        list(read_csl_tsv(tmp_path / "nope.tsv"))
