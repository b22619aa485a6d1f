"""The forgetting probe: the base and the adapter on general questions that are not the domain's.

A domain LoRA can cost general ability. Two measures show how much, for each variant: the mean negative
log-likelihood per token of the reference answers (teacher-forced, so it moves even for a tiny model that
answers nothing useful), and its greedy answers scored against the references (ROUGE-L, and whether the
answer contains the reference).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pixiu.config import EvalArgs
from pixiu.domain import Example
from pixiu.errors import BadRecord
from pixiu.evaluation import variant_context
from pixiu.files import write_jsonl
from pixiu.generate import generate_answers
from pixiu.loss import answer_logprobs
from pixiu.records import load_examples
from pixiu.seq2seq import example_codec
from pixiu.similarity import rouge_l, text_units

GENERAL_DATA = Path(__file__).with_name("general_data") / "general.jsonl"
"""pixiu's bundled general questions (40, English and Chinese; Apache-2.0, written for pixiu)."""
GENERAL_BATCH = 40
"""The least number of general questions answered together: short questions are cheap to batch, so the bundled
set is one batch (one generation loop) even where `eval.batch_size` is small."""


def general_record(record: dict[str, Any]) -> Example:
    """A general-set row, `{"question": ..., "answer": ...}`, as a one-turn conversation referenced by its answer.

    Raises:
        BadRecord: `question` or `answer` is missing, empty or not a string.
    """
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip() or not isinstance(answer, str) or not answer.strip():
        raise BadRecord('a general question needs non-empty string fields "question" and "answer"')
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return Example(messages, reference=answer)


def load_general(path: str | Path | None) -> tuple[list[Example], str]:
    """The probe's questions from `path` (JSONL with `question` and `answer`), else the bundled set, and its source.

    Raises:
        DataError: The file is missing, or a row is not JSON or lacks a field (with its file:line).
    """
    source = Path(path) if path else GENERAL_DATA
    return load_examples(source, general_record).items, str(source) if path else "bundled"


def contains_answer(answer: str, reference: str) -> bool:
    """Whether the reference's words (CJK characters, Latin words, numbers; case and punctuation ignored) occur
    in the answer, in order and together."""
    said, gold = text_units(answer), text_units(reference)
    return bool(gold) and any(said[i : i + len(gold)] == gold for i in range(len(said) - len(gold) + 1))


@torch.inference_mode()
def reference_nll(model, tokenizer, examples: Sequence[Example], *, max_len: int, batch_size: int) -> float:
    """Mean negative log-likelihood per token of the examples' answers given their questions (teacher-forced)."""
    tokenize, collate = example_codec(model)
    tokenized = [tokenize(tokenizer, e.messages, max_len) for e in examples]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    for start in range(0, len(tokenized), batch_size):
        rows = list(range(start, min(start + batch_size, len(tokenized))))
        batch = {k: v.to(model.device) for k, v in collate(tokenized, rows, pad_id).items()}
        sums, counts = answer_logprobs(model, batch)
        total -= float(sums.sum())
        count += int(counts.sum())
    return total / max(count, 1)


@dataclass(frozen=True)
class GeneralProbe:
    """The probe's figures (`metrics.json`'s `general` section) and each variant's answers."""

    section: dict[str, Any]
    answers: dict[str, list[str]]


def probe_general(
    model,
    tokenizer,
    examples: Sequence[Example],
    *,
    source: str,
    max_len: int,
    max_new_tokens: int,
    batch_size: int,
    variants: Sequence[str] = ("base", "adapter"),
) -> GeneralProbe:
    """Score each variant ("base": any adapter switched off) on general questions: reference NLL per token,
    ROUGE-L ×100 and contains-the-answer ×100 of its greedy answers; the section also records the seconds taken."""
    began = time.perf_counter()
    references = [e.messages[-1]["content"] for e in examples]
    section: dict[str, Any] = {"records": len(examples), "data": source}
    answers: dict[str, list[str]] = {}
    was_training = model.training
    model.eval()
    for label in variants:
        with variant_context(model, label):
            nll = reference_nll(model, tokenizer, examples, max_len=max_len, batch_size=batch_size)
            texts = generate_answers(
                model,
                tokenizer,
                [e.messages[:-1] for e in examples],
                max_prompt_tokens=max_len,
                max_new_tokens=max_new_tokens,
                batch_size=batch_size,
            )
        answers[label] = texts
        pairs = list(zip(texts, references, strict=True))
        section[label] = {
            "nll_per_token": round(nll, 4),
            "rouge_l": round(100 * sum(rouge_l(a, r) for a, r in pairs) / len(pairs), 2),
            "contains_answer": round(100 * sum(contains_answer(a, r) for a, r in pairs) / len(pairs), 2),
        }
    model.train(was_training)
    section["seconds"] = round(time.perf_counter() - began, 2)
    return GeneralProbe(section, answers)


def write_general_predictions(path: Path, examples: Sequence[Example], answers: dict[str, list[str]]) -> None:
    """One JSON line per general question: where it came from, the question, the reference, each variant's answer."""
    rows = []
    for i, example in enumerate(examples):
        row = {"where": example.where, "question": example.messages[0]["content"], "gold": example.reference}
        row.update({label: texts[i] for label, texts in answers.items()})
        rows.append(row)
    write_jsonl(path, rows)


def run_probe(
    model,
    tokenizer,
    args: EvalArgs,
    *,
    max_len: int,
    variants: Sequence[str] = ("base", "adapter"),
    predictions_path: Path | None = None,
) -> dict[str, Any]:
    """The forgetting probe as configured by `eval.general_data`, `eval.general_max_new_tokens` and
    `eval.batch_size` (at least `GENERAL_BATCH`): its `metrics.json` section; with `predictions_path`, every
    answer is written there next to its reference."""
    examples, source = load_general(args.general_data)
    probe = probe_general(
        model,
        tokenizer,
        examples,
        source=source,
        max_len=max_len,
        max_new_tokens=args.general_max_new_tokens,
        batch_size=max(args.batch_size, GENERAL_BATCH),
        variants=variants,
    )
    if predictions_path:
        write_general_predictions(predictions_path, examples, probe.answers)
    return probe.section
