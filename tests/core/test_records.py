"""Reading raw records: errors name the file and line; skipped records are kept in a rejects file."""

import json

import pytest

import pixiu.records
from pixiu.errors import BadRecord, DataError
from pixiu.records import load_examples


def formatter(record: dict) -> list[dict]:
    if "q" not in record or "a" not in record:
        raise BadRecord("needs fields 'q' and 'a'")
    return [{"role": "user", "content": record["q"]}, {"role": "assistant", "content": record["a"]}]


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_records_load_with_their_location(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"q": "1", "a": "2"}), "", json.dumps({"q": "3", "a": "4"})])
    result = load_examples(path, formatter)
    assert [e.where for e in result.items] == [f"{path}:1", f"{path}:3"]
    assert result.rejected == 0


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"q": "1", "a": "2"}), '{"q": "broken"'])
    with pytest.raises(DataError, match=rf"{path}:2: not valid JSON"):
        load_examples(path, formatter)


def test_unusable_record_names_file_line_and_reason(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"q": "1"})])
    with pytest.raises(DataError, match=rf"{path}:1: needs fields 'q' and 'a'.*--on-bad-record skip"):
        load_examples(path, formatter)


def test_skip_writes_every_rejected_row_and_counts_it(tmp_path):
    lines = [json.dumps({"q": "1", "a": "2"}), "not json", json.dumps({"q": "only"}), "[1, 2]"]
    path = write_lines(tmp_path / "d.jsonl", lines)
    rejects = tmp_path / "run" / "rejects.jsonl"
    result = load_examples(path, formatter, on_bad_record="skip", rejects_path=rejects)
    assert len(result.items) == 1 and result.rejected == 3
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["raw"] for r in rows] == lines[1:]
    assert [r["where"] for r in rows] == [f"{path}:{n}" for n in (2, 3, 4)]
    assert all(r["reason"] for r in rows)


def test_json_list_files_are_read(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"q": "1", "a": "2"}, {"q": "3", "a": "4"}]), encoding="utf-8")
    assert [e.where for e in load_examples(path, formatter).items] == [f"{path}[0]", f"{path}[1]"]


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_examples(tmp_path / "nope.jsonl", formatter)


def test_empty_file(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [""])
    with pytest.raises(DataError, match="no usable records"):
        load_examples(path, formatter)


def test_all_rejected_is_an_error_that_points_at_the_rejects(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", ["{}"])
    with pytest.raises(DataError, match="1 rejected"):
        load_examples(path, formatter, on_bad_record="skip", rejects_path=tmp_path / "rejects.jsonl")


def test_a_folder_given_as_data_is_named_a_folder(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path} is a folder; pass one .jsonl or .json file with --data"):
        load_examples(tmp_path, formatter)


def test_a_record_over_the_bound_names_file_line_bound_and_how_to_raise_it(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"q": "1", "a": "2"}), json.dumps({"q": "x" * 200, "a": "2"})])
    monkeypatch.setenv("PIXIU_MAX_RECORD_CHARS", "100")
    with pytest.raises(DataError, match=rf"{path}:2: record longer than 100 characters.*PIXIU_MAX_RECORD_CHARS=N"):
        load_examples(path, formatter)
    monkeypatch.setenv("PIXIU_MAX_RECORD_CHARS", str(len(json.dumps({"q": "x" * 200, "a": "2"}))))
    assert len(load_examples(path, formatter).items) == 2  # exactly at the bound is fine


def test_a_huge_record_is_refused_without_reading_it_whole(tmp_path, monkeypatch):
    import tracemalloc

    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"q": "x" * 20_000_000, "a": "2"}) + "\n", encoding="utf-8")
    monkeypatch.setenv("PIXIU_MAX_RECORD_CHARS", "1000")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"{path}:1: record longer than 1,000 characters"):
            load_examples(path, formatter)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"reading a refused 20 MB record peaked at {peak:,} bytes"


def test_a_bad_bound_is_a_clear_error(tmp_path, monkeypatch):
    path = write_lines(tmp_path / "d.jsonl", [json.dumps({"q": "1", "a": "2"})])
    monkeypatch.setenv("PIXIU_MAX_RECORD_CHARS", "lots")
    with pytest.raises(DataError, match="PIXIU_MAX_RECORD_CHARS='lots': expected a positive number"):
        load_examples(path, formatter)


def test_a_utf8_bom_does_not_reject_the_first_record(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"q": "问", "a": "答"}, ensure_ascii=False).encode() + b"\n")
    assert [e.where for e in load_examples(path, formatter).items] == [f"{path}:1"]


def test_a_gbk_file_names_its_first_line_and_how_to_convert_it(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(json.dumps({"q": "什么", "a": "红"}, ensure_ascii=False).encode("gbk") + b"\n")
    with pytest.raises(DataError, match=rf"{path}:1: not UTF-8 text .*iconv -f GBK -t UTF-8"):
        load_examples(path, formatter)


def test_one_gbk_line_is_skipped_into_rejects(tmp_path):
    good = json.dumps({"q": "1", "a": "2"}).encode()
    path = tmp_path / "d.jsonl"
    path.write_bytes(good + b"\n" + '{"q": "中文", "a": "是"}'.encode("gbk") + b"\n" + good + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    result = load_examples(path, formatter, on_bad_record="skip", rejects_path=rejects)
    assert result.rejected == 1 and [e.where for e in result.items] == [f"{path}:1", f"{path}:3"]
    (row,) = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert row["where"] == f"{path}:2" and row["reason"].startswith("not UTF-8 text")


def test_a_binary_file_is_refused_by_line_not_with_a_traceback(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=rf"{path}:1: not UTF-8 text"):
        load_examples(path, formatter)


def test_a_gbk_json_list_names_the_line(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'[\n{"q": "1", "a": "2"},\n' + '{"q": "中", "a": "是"}'.encode("gbk") + b"\n]")
    with pytest.raises(DataError, match=rf"{path}:3: not UTF-8 text"):
        load_examples(path, formatter)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_json_errors_give_the_column_where_they_are(tmp_path, suffix):
    line = '{"q": "什么颜色？", "a": "红", "x": tru}'
    path = tmp_path / f"d{suffix}"
    path.write_text(line + "\n" if suffix == ".jsonl" else "[\n" + line + "\n]", encoding="utf-8")
    where = f"{path}:1" if suffix == ".jsonl" else f"{path}:2"
    with pytest.raises(
        DataError, match=rf"{where}: not valid JSON \(Expecting value at column {line.index('tru') + 1}\)"
    ):
        load_examples(path, formatter)


def test_json_list_files_are_streamed_with_exact_error_positions(tmp_path, monkeypatch):
    monkeypatch.setattr("pixiu.records._JsonListReader.CHUNK", 7)  # records and errors straddle many chunks
    path = tmp_path / "d.json"
    rows = [{"q": "问题" * 5, "a": str(n)} for n in range(4)]
    path.write_text(
        "\ufeff[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n", encoding="utf-8"
    )
    assert [e.messages[1]["content"] for e in load_examples(path, formatter).items] == ["0", "1", "2", "3"]
    path.write_text('[{"q": "1", "a": "2"},\n {"q": "3", "a": "4"} {"q": "5"}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.json:2: not valid JSON \(expected , or \] after record 1 at column 23\)"):
        load_examples(path, formatter)
    path.write_text('[{"q": "1", "a": "2"}, {"q": "3", "a": 4x}]', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.json:1: not valid JSON \(Expecting ',' delimiter at column 41\)"):
        load_examples(path, formatter)
    path.write_text('{"q": "1"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"must hold one list of records; expected \[ at column 1\)"):
        load_examples(path, formatter)


def test_a_json_list_record_over_the_bound_is_refused_without_reading_on(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXIU_MAX_RECORD_CHARS", "100")
    monkeypatch.setattr("pixiu.records._JsonListReader.CHUNK", 16)
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"q": "1", "a": "2"}, {"q": "x" * 500, "a": "2"}]), encoding="utf-8")
    read = []
    real_read = pixiu.records._JsonListReader._more
    monkeypatch.setattr(pixiu.records._JsonListReader, "_more", lambda self: read.append(1) or real_read(self))
    with pytest.raises(DataError, match=r"d\.json:1: record longer than 100 characters"):
        load_examples(path, formatter)
    assert len(read) * 16 < 300, "the reader kept reading past the bound"
