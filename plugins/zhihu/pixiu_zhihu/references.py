"""Give every crawled question a reference summary: the user's own, else a teacher model's, else an extractive one.

Each record written gets `summary` and `reference` ("user", "teacher" or "silver"). A summary counts as the
user's when the record has one and no `reference` label, or the label "user"; teacher summaries already
present are kept; silver ones are computed again (a teacher, when given, replaces them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pixiu import BadRecord, PixiuError
from pixiu.files import write_jsonl
from pixiu.records import iter_raw_records
from pixiu.teacher import Teacher
from pixiu_zhihu.extractive import extractive_summary
from pixiu_zhihu.formatter import question_prompt, top_answers
from pixiu_zhihu.parser import parse_summary

TEACHER_MAX_CHARS = 1500
"""Characters of question and answers shown to the teacher: far more than the student sees."""


def reference_for(record: dict[str, Any], teacher: Teacher | None, top_k: int) -> tuple[str, str]:
    """Return `(summary, kind)` for one question record, kind being "user", "teacher" or "silver".

    Raises:
        PixiuError: The teacher cannot be reached or answers with an error (see `pixiu.teacher.Teacher.ask`).
    """
    summary = record.get("summary")
    kind = record.get("reference", "user")
    if isinstance(summary, str) and summary.strip() and kind in ("user", "teacher"):
        return " ".join(summary.split()), kind
    if teacher is not None:
        prompt = question_prompt(record, top_k=top_k, max_chars=TEACHER_MAX_CHARS)
        summary = parse_summary(teacher.ask(prompt))
        if summary:
            return summary, "teacher"
    return extractive_summary(record, top_k=top_k), "silver"


def fill_references(input_path: Path, output_path: Path, *, teacher: Teacher | None, top_k: int) -> Counter[str]:
    """Write every usable question of `input_path` to `output_path` with its reference summary.

    Records that are not questions with answer text (hot-list entries, empty questions) are left out and
    counted. The output replaces `output_path` atomically at the end (`pixiu.files.write_jsonl`); the
    teacher's cache, not the output, is what makes an interrupted run resumable.

    Returns:
        Counts of records by reference kind, plus `skipped: …` reasons.

    Raises:
        PixiuError: A line is not JSON (file and line named), or the teacher fails.
    """
    counts: Counter[str] = Counter()

    def rows() -> Iterator[dict[str, Any]]:
        for where, _, record in iter_raw_records(input_path):
            if isinstance(record, BadRecord):
                raise PixiuError(f"{where}: {record}; expected one record per line")
            if not isinstance(record, dict) or not isinstance(record.get("answers"), list):
                counts["skipped: not a question with answers (hot-list entries need follow_answers=1)"] += 1
                continue
            if not top_answers(record, 1):
                counts["skipped: no answer has text"] += 1
                continue
            try:
                summary, kind = reference_for(record, teacher, top_k)
            except PixiuError as exc:
                raise PixiuError(f"{where}: {exc}") from exc
            counts[kind] += 1
            yield {**record, "summary": summary, "reference": kind}

    write_jsonl(output_path, rows())
    return counts
