"""Preference pairs for alignment training: read them (TRL's prompt/chosen/rejected rows, or through a domain's
preference formatter), tokenise both answers after one shared prompt, and batch them by length.

A pair that cannot teach anything is a bad record, reported with its file and line: a missing or empty side,
chosen equal to rejected, a prompt that leaves no room for an answer within `data.max_seq_len`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from rich.console import Console

    from pixiu.config import RunConfig

from pixiu.data import IGNORE_INDEX, TokenizedExample, collate, render
from pixiu.domain import Domain, Messages, Preference
from pixiu.errors import BadRecord, DataError
from pixiu.files import read_jsonl, write_jsonl
from pixiu.formats import pair_row
from pixiu.records import Loaded, load_records
from pixiu.runs import EVAL_PAIRS_FILE, Split, held_out_note, rejects_file, split_examples

PAIR_KEYS = ("prompt", "chosen", "rejected")
"""The fields of a preference row as TRL's DPO and reward trainers read it."""


@dataclass(frozen=True)
class TokenizedPair:
    """Both answers of a pair after the same prompt tokens; `len()` is the tokens the pair takes in a batch."""

    chosen: TokenizedExample
    rejected: TokenizedExample
    answer_cut: bool

    def __len__(self) -> int:
        return 2 * max(len(self.chosen), len(self.rejected))  # two rows, padded to the longer


def load_preferences(
    path: Path,
    domain: Domain,
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
    data_format: str = "domain",
) -> Loaded[Preference]:
    """Every pair in `path`: rows holding prompt/chosen/rejected as they are, other rows through the domain's
    preference formatter (or `data_format`'s pair rows); bad rows stop the load with file:line, or with "skip" go
    to `rejects_path`."""

    return load_records(
        path,
        lambda record: record_preferences(record, domain, data_format),
        on_bad_record=on_bad_record,
        rejects_path=rejects_path,
        what="preference pairs",
    )


def record_preferences(record: Any, domain: Domain, data_format: str = "domain") -> list[Preference]:
    """The pairs of one record: a row holding prompt/chosen/rejected as it is, another through the domain's
    preference formatter, or, when the domain has none or `data_format` (`data.format`) is not "domain", as a
    pair row of the standard formats (`pixiu.formats.pair_row`); `BadRecord` for one that makes no usable pair."""
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object, found {type(record).__name__}")
    if all(key in record for key in PAIR_KEYS):
        return [as_preference(record)]
    if domain.preference_formatter is None or data_format != "domain":
        return [as_preference(pair_row(record, data_format))]
    return [checked(p) for p in domain.preference_formatter(record)]


def as_preference(record: dict[str, Any]) -> Preference:
    """A TRL-style row as a `Preference`: the prompt as text or chat messages, each answer as text (or TRL's
    conversational form, a list holding one assistant message)."""
    missing = [key for key in PAIR_KEYS if key not in record]
    if missing:
        raise BadRecord(f"a preference pair needs {', '.join(PAIR_KEYS)}; missing {', '.join(missing)}")
    chosen, rejected = answer_text(record["chosen"], "chosen"), answer_text(record["rejected"], "rejected")
    return checked(Preference(prompt_messages(record["prompt"]), chosen, rejected))


def prompt_messages(prompt: Any) -> Any:
    """A prompt given as text is one user message; chat messages stay as they are (checked later)."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def checked(pair: Preference) -> Preference:
    """`pair`, once it is known to be able to teach a preference."""
    if not isinstance(pair, Preference):
        raise BadRecord(f"a preference formatter must return pixiu.Preference objects, not {type(pair).__name__}")
    check_prompt(pair.prompt, "chosen and rejected")
    for side in ("chosen", "rejected"):
        value = getattr(pair, side)
        if not isinstance(value, str) or not value.strip():
            raise BadRecord(f"{side} is empty")
    if pair.chosen.strip() == pair.rejected.strip():
        raise BadRecord("chosen and rejected are the same answer, so the pair teaches no preference")
    return pair


def check_prompt(prompt: Any, answers_field: str) -> None:
    """Raise `BadRecord` unless `prompt` is a non-empty list of chat messages that stops before the answer (which
    belongs in `answers_field`)."""
    if not isinstance(prompt, list) or not prompt or not all(_is_message(m) for m in prompt):
        raise BadRecord("the prompt must be text or a non-empty list of role/content chat messages")
    if prompt[-1]["role"] == "assistant":
        raise BadRecord(f"the prompt ends with an assistant message; the answers belong in {answers_field}")
    if not any(m["content"].strip() for m in prompt):
        raise BadRecord("the prompt is empty")


def tokenize_pairs(
    tokenizer,
    pairs: Sequence[Preference],
    max_len: int,
    *,
    on_bad_record: str = "error",
    rejects_path: Path | None = None,
) -> tuple[list[TokenizedPair], list[Preference]]:
    """Tokenise every pair (prompt masked, answers learned); answers too long for `max_len` are cut.

    Returns the tokenised pairs and the pairs they came from. A prompt that leaves no room for an answer is a
    bad record: an error naming it, or with "skip" a line in `rejects_path` (it is then left out of both lists).
    """
    tokenized, kept = [], []
    for pair in pairs:
        prompt_text, prompt_ids = _prompt_tokens(tokenizer, pair.prompt)
        if len(prompt_ids) >= max_len:
            _reject(pair, _no_room(len(prompt_ids), max_len), on_bad_record, rejects_path)
            continue
        chosen = _with_answer(tokenizer, pair.prompt, prompt_text, prompt_ids, pair.chosen, max_len)
        rejected = _with_answer(tokenizer, pair.prompt, prompt_text, prompt_ids, pair.rejected, max_len)
        tokenized.append(TokenizedPair(chosen, rejected, chosen.answer_cut or rejected.answer_cut))
        kept.append(pair)
    return tokenized, kept


def tokenize_answer(tokenizer, prompt: Messages, answer: str, max_len: int) -> TokenizedExample:
    """One answer after its prompt as `tokenize_pairs` tokenises each side of a pair (cut to `max_len`).

    Raises:
        DataError: The prompt leaves no room for an answer within `max_len` tokens.
    """
    prompt_text, prompt_ids = _prompt_tokens(tokenizer, prompt)
    if len(prompt_ids) >= max_len:
        raise DataError(_no_room(len(prompt_ids), max_len))
    return _with_answer(tokenizer, prompt, prompt_text, prompt_ids, answer, max_len)


def cut_pairs_note(pairs: Sequence[Preference], tokenized: Sequence[TokenizedPair], max_len: int) -> str | None:
    """Count the pairs whose answers were cut to fit `max_len` tokens (naming the first), or None when none was."""
    cut = [pair.where for pair, tokens in zip(pairs, tokenized, strict=True) if tokens.answer_cut]
    if not cut:
        return None
    return (
        f"{len(cut)} of {len(tokenized)} preference pairs (the first at {cut[0]}) have an answer longer than "
        f"data.max_seq_len={max_len} tokens allows after its prompt: it is compared on its first tokens only; "
        "raise data.max_seq_len to compare whole answers"
    )


def collate_pairs(pairs: Sequence[TokenizedPair], indices: Sequence[int], pad_id: int) -> dict[str, torch.Tensor]:
    """One batch of 2n rows: the chosen answers of the n pairs, then their rejected answers, right-padded."""
    rows = [pairs[i].chosen for i in indices] + [pairs[i].rejected for i in indices]
    return collate(rows, list(range(len(rows))), pad_id)


def write_pairs(path: Path, pairs: Sequence[Preference]) -> None:
    """Save pairs as TRL-style rows (with `where`), as the held-out split of a preference run."""
    write_jsonl(
        path, [{"where": p.where, "prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
    )


def read_pairs(path: Path) -> list[Preference]:
    """Pairs saved by `write_pairs`."""
    return [replace(as_preference(row), where=row.get("where", "")) for row in read_jsonl(path)]


def answer_text(value: Any, side: str) -> str:
    """An answer given as text, or as TRL's conversational form: a list holding one assistant message."""
    if isinstance(value, list) and len(value) == 1 and _is_message(value[0]) and value[0]["role"] == "assistant":
        return value[0]["content"]
    if not isinstance(value, str):
        raise BadRecord(f"{side} must be the answer's text (or a list holding one assistant message)")
    return value


def _is_message(message: Any) -> bool:
    """A role/content chat message."""
    return (
        isinstance(message, dict)
        and message.get("role") in ("system", "user", "assistant")
        and isinstance(message.get("content"), str)
    )


def _prompt_tokens(tokenizer, prompt: Messages) -> tuple[str, list[int]]:
    """The prompt rendered up to the assistant's turn, and its token ids."""
    prompt_text = render(tokenizer, prompt, add_generation_prompt=True)
    return prompt_text, tokenizer(prompt_text, add_special_tokens=False)["input_ids"]


def _no_room(prompt_tokens: int, max_len: int) -> str:
    """Why a prompt of `prompt_tokens` tokens cannot be trained on or scored."""
    return (
        f"the prompt is {prompt_tokens} tokens, leaving no room for an answer within "
        f"data.max_seq_len={max_len}; shorten it or raise data.max_seq_len"
    )


def _with_answer(tokenizer, prompt: Messages, prompt_text: str, prompt_ids: list[int], answer: str, max_len: int):
    """The prompt's tokens followed by the answer's (the end-of-turn included), the answer alone labelled."""
    full = render(tokenizer, [*prompt, {"role": "assistant", "content": answer}])
    answer_ids = tokenizer(full[len(prompt_text) :], add_special_tokens=False)["input_ids"]
    room = max_len - len(prompt_ids)
    return TokenizedExample(
        prompt_ids + answer_ids[:room],
        [IGNORE_INDEX] * len(prompt_ids) + answer_ids[:room],
        answer_cut=len(answer_ids) > room,
    )


def _reject(pair: Preference, reason: str, on_bad_record: str, rejects_path: Path | None) -> None:
    """Stop at a pair that cannot be trained on, or with "skip" write it to `rejects_path`."""
    if on_bad_record != "skip" or rejects_path is None:
        raise DataError(f"{pair.where}: {reason}. Fix the record, or pass --on-bad-record skip.")
    raw = {"prompt": pair.prompt, "chosen": pair.chosen, "rejected": pair.rejected}
    row = {"where": pair.where, "reason": reason, "raw": raw}
    with rejects_path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_pair_split(
    data_path: Path,
    domain: Domain,
    config: RunConfig,
    run_dir: Path,
    console: Console,
    *,
    resume: bool,
    writes: bool = True,
) -> Split[Preference]:
    """Load a run's pairs and hold out `data.eval_records` of them (saved in the run folder unless resuming); only
    the rank that `writes` writes the rejects and the held-out split."""
    rejects = rejects_file(run_dir, writes)
    loaded = load_preferences(
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
    if not resume and writes:
        write_pairs(run_dir / EVAL_PAIRS_FILE, held_out)  # the held-out split is part of the record
    return Split(train, held_out, loaded.rejected)


def tokenize_split(
    tokenizer, split: Split[Preference], config: RunConfig, run_dir: Path, console: Console, *, writes: bool = True
) -> Split[TokenizedPair]:
    """Tokenise both sides of a split, saying how many answers were cut; `rejected` then also counts the pairs whose
    prompt left no room for an answer."""
    rejects, max_len, policy = rejects_file(run_dir, writes), config.data.max_seq_len, config.data.on_bad_record
    train, kept = tokenize_pairs(tokenizer, split.train, max_len, on_bad_record=policy, rejects_path=rejects)
    held_out, _ = tokenize_pairs(tokenizer, split.held_out, max_len, on_bad_record=policy, rejects_path=rejects)
    if note := cut_pairs_note(kept, train, max_len):
        console.print(f"[yellow]{note}[/]")
    if not train:
        raise DataError(f"no preference pair is left to train on; see {rejects}")
    rejected = split.rejected + len(split.train) + len(split.held_out) - len(train) - len(held_out)
    if rejected:
        console.print(f"[yellow]{rejected} bad records or pairs skipped; see {rejects}[/]")
    return Split(train, held_out, rejected)
