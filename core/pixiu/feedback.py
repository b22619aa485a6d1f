"""Unpaired feedback for KTO (`--method kto`): single answers marked desirable (thumbs up) or undesirable (thumbs
down), read as trl's unpaired rows, or made from preference pairs (the chosen answer desirable, the rejected one
undesirable), then tokenised after their prompt.

A row that cannot teach anything is a bad record, reported with its file and line: a missing or empty field, a
label that is not true or false, a prompt that leaves no room for an answer within `data.max_seq_len`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixiu.data import TokenizedExample
from pixiu.domain import Domain, Messages
from pixiu.errors import BadRecord, DataError
from pixiu.files import write_jsonl
from pixiu.preference import (
    answer_text,
    check_prompt,
    prompt_messages,
    record_preferences,
    tokenize_answer,
)
from pixiu.records import Loaded, load_records
from pixiu.runs import Split, held_out_note, rejects_file, split_examples

if TYPE_CHECKING:
    from rich.console import Console

    from pixiu.config import RunConfig

FEEDBACK_KEYS = ("prompt", "completion", "label")
"""The fields of an unpaired feedback row as trl's KTO trainer reads it; `label` is true for a desirable answer."""
EVAL_FEEDBACK_FILE = "eval_feedback.jsonl"
"""The held-out feedback of a KTO run, in its run folder."""


@dataclass(frozen=True)
class Feedback:
    """One answer to a prompt, and whether it is one to learn from (desirable) or away from (undesirable)."""

    prompt: Messages
    completion: str
    desirable: bool
    where: str = ""
    """`file:line` of the record it came from, for error messages; set by pixiu."""


@dataclass(frozen=True)
class TokenizedFeedback:
    """A feedback answer after its prompt's tokens; `len()` is the tokens it takes in a batch."""

    example: TokenizedExample
    answer: Feedback

    @property
    def desirable(self) -> bool:
        """Whether the answer is one to learn from."""
        return self.answer.desirable

    def __len__(self) -> int:
        return len(self.example)


def load_feedback(
    path: Path,
    domain: Domain,
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
    data_format: str = "domain",
) -> Loaded[Feedback]:
    """Every feedback answer in `path`: prompt/completion/label rows as they are, any other row as the two answers
    of its preference pairs (read as `record_preferences` reads them with `data_format`); bad rows stop the load
    with file:line, or with "skip" go to `rejects_path`."""
    return load_records(
        path,
        lambda record: record_feedback(record, domain, data_format),
        on_bad_record=on_bad_record,
        rejects_path=rejects_path,
        what="feedback answers",
    )


def record_feedback(record: Any, domain: Domain, data_format: str = "domain") -> list[Feedback]:
    """The feedback of one record: an unpaired row as it is, or both answers of each of its preference pairs."""
    if isinstance(record, dict) and all(key in record for key in FEEDBACK_KEYS):
        return [as_feedback(record)]
    return [
        answer
        for pair in record_preferences(record, domain, data_format)
        for answer in (Feedback(pair.prompt, pair.chosen, True), Feedback(pair.prompt, pair.rejected, False))
    ]


def as_feedback(record: dict[str, Any]) -> Feedback:
    """A trl-style unpaired row as `Feedback`: the prompt as text or chat messages, the completion as text (or a
    list holding one assistant message), the label true or false."""
    prompt = prompt_messages(record["prompt"])
    check_prompt(prompt, "completion")
    completion = answer_text(record["completion"], "completion")
    if not completion.strip():
        raise BadRecord("completion is empty")
    if not isinstance(record["label"], bool):
        raise BadRecord(
            f"label must be true (a desirable answer) or false (an undesirable one), not {record['label']!r}"
        )
    return Feedback(prompt, completion, record["label"])


def tokenize_feedback(
    tokenizer, answers: Sequence[Feedback], max_len: int, *, on_bad_record: str, rejects_path: Path | None
) -> tuple[list[TokenizedFeedback], int]:
    """Tokenise every answer after its prompt (cut to `max_len`); returns them and how many were cut. A prompt
    that leaves no room for an answer is a bad record: an error naming it, or with "skip" a line in `rejects_path`."""
    tokenized, cut = [], 0
    for answer in answers:
        try:
            example = tokenize_answer(tokenizer, answer.prompt, answer.completion, max_len)
        except DataError as exc:
            if on_bad_record != "skip" or rejects_path is None:
                raise DataError(f"{answer.where}: {exc}. Fix the record, or pass --on-bad-record skip.") from exc
            _reject(answer, str(exc), rejects_path)
            continue
        tokenized.append(TokenizedFeedback(example, answer))
        cut += example.answer_cut
    return tokenized, cut


def read_feedback_split(
    data_path: Path,
    domain: Domain,
    config: RunConfig,
    run_dir: Path,
    console: Console,
    *,
    resume: bool,
    writes: bool = True,
) -> Split[Feedback]:
    """Load a run's feedback and hold out `data.eval_records` answers (saved in the run folder unless resuming);
    only the rank that `writes` writes the rejects and the held-out split."""
    rejects = rejects_file(run_dir, writes)
    loaded = load_feedback(
        data_path,
        domain,
        on_bad_record=config.data.on_bad_record,
        rejects_path=rejects,
        data_format=config.data.format,
    )
    train, held_out = split_examples(loaded.items, config.data.eval_records, config.train.seed)
    if note := held_out_note(len(loaded.items), config.data.eval_records):
        console.print(f"[yellow]{note}[/]")
    if config.data.max_records:
        train = train[: config.data.max_records]
    if not any(a.desirable for a in train) or all(a.desirable for a in train):
        raise DataError(
            f"{data_path}: KTO needs desirable and undesirable answers to train on; the training split has "
            f"{sum(a.desirable for a in train)} desirable of {len(train)}"
        )
    if not resume and writes:
        write_jsonl(run_dir / EVAL_FEEDBACK_FILE, [_row(a) for a in held_out])
    return Split(train, held_out, loaded.rejected)


def _row(answer: Feedback) -> dict[str, Any]:
    """`answer` as a trl-style unpaired row with its `where`."""
    return {"where": answer.where, "prompt": answer.prompt, "completion": answer.completion, "label": answer.desirable}


def _reject(answer: Feedback, reason: str, rejects_path: Path) -> None:
    """Write an answer that cannot be trained on to `rejects_path`."""
    with rejects_path.open("a", encoding="utf-8") as handle:
        handle.write(
            json.dumps({"where": answer.where, "reason": reason, "raw": _row(answer)}, ensure_ascii=False) + "\n"
        )


def tokenize_feedback_split(
    tokenizer, split: Split[Feedback], config: RunConfig, run_dir: Path, console: Console, *, writes: bool = True
) -> Split[TokenizedFeedback]:
    """Tokenise both parts of a split, saying how many answers were cut; `rejected` then also counts the answers
    whose prompt left no room for them."""
    rejects, max_len, policy = rejects_file(run_dir, writes), config.data.max_seq_len, config.data.on_bad_record
    train, cut = tokenize_feedback(tokenizer, split.train, max_len, on_bad_record=policy, rejects_path=rejects)
    held_out, _ = tokenize_feedback(tokenizer, split.held_out, max_len, on_bad_record=policy, rejects_path=rejects)
    if not train:
        raise DataError(f"no feedback answer is left to train on; see {rejects}")
    if cut:
        console.print(
            f"[yellow]{cut} of {len(train)} answers are longer than data.max_seq_len={max_len} tokens allows after "
            "their prompt: they are learned on their first tokens only; raise data.max_seq_len for whole answers[/]"
        )
    rejected = split.rejected + len(split.train) + len(split.held_out) - len(train) - len(held_out)
    if rejected:
        console.print(f"[yellow]{rejected} bad records or answers skipped; see {rejects}[/]")
    return Split(train, held_out, rejected)
