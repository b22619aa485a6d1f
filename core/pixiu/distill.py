"""Distillation: a teacher answers a domain's prompts, as SFT data or as the chosen side of preference pairs.

A prompt is what the domain's formatter makes of a record, up to the last user turn (its system prompt
included). The teacher's answers are cached by `pixiu.teacher`; the student's greedy answers (the rejected
side of pairs) are cached the same way, one line per answer, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pixiu.config import EvalArgs, RunConfig, formatter_for, load_config
from pixiu.domain import Domain, Messages
from pixiu.errors import PixiuError
from pixiu.records import load_examples
from pixiu.teacher import Teacher, TeacherCache


@dataclass(frozen=True)
class DomainPrompts:
    """A domain's prompts (chat messages up to the answer), where each came from, and the domain's recipe."""

    domain: Domain
    prompts: list[Messages]
    wheres: list[str]
    config: RunConfig
    source: Path


def domain_prompts(domain_name: str, data_path: Path | None = None) -> DomainPrompts:
    """The prompts of a domain's records (`data_path`, else its sample data) through its formatter.

    Raises:
        PixiuError: The domain is unknown, ships no sample data and none was given, or a record is bad
            (named with file:line).
    """
    from pixiu.plugins import get_domain

    domain = get_domain(domain_name)
    config = load_config([domain.default_config] if domain.default_config else [], domain=domain)
    source = data_path or domain.sample_data
    if source is None:
        raise PixiuError(f"domain {domain.name!r} ships no sample data; pass --data FILE with its records")
    examples = load_examples(source, formatter_for(domain, config)).items
    return DomainPrompts(domain, [e.messages[:-1] for e in examples], [e.where for e in examples], config, source)


def last_user_turn(prompt: Messages) -> str:
    """The content of the last user message of a prompt ("" when there is none)."""
    return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")


def teacher_answers(
    teacher: Teacher, prompts: Sequence[Messages], on_answer: Callable[[], None] | None = None
) -> list[str]:
    """The teacher's greedy answer to each prompt, in order, whitespace at the ends stripped; "" for an answer cut at
    the teacher's token limit, which would teach answers that stop mid-sentence."""
    answers = []
    for prompt in prompts:
        answer = teacher.reply(prompt)
        answers.append("" if answer.truncated else answer.text.strip())
        if on_answer:
            on_answer()
    return answers


def student_key(base: str, prompt: Messages, args: EvalArgs, max_prompt_tokens: int) -> str:
    """The cache key of the student's greedy answer to `prompt` (sha256 of the base, generation settings and prompt)."""
    settings = {"base": base, "prompt": prompt, "max_new_tokens": args.max_new_tokens, "cut": max_prompt_tokens}
    return hashlib.sha256(json.dumps(settings, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def student_answers(
    load: Callable[[], tuple[Any, Any]],
    base: str,
    prompts: Sequence[Messages],
    cache: TeacherCache,
    args: EvalArgs,
    *,
    max_prompt_tokens: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[str]:
    """The student model's greedy answers to `prompts`: cached ones read back, the rest generated a batch at a time
    and each batch cached before the next; `load()` gives (model, tokenizer), called only when an answer is missing.
    """
    from pixiu.generate import generate_answers

    keys = [student_key(base, p, args, max_prompt_tokens) for p in prompts]
    answers = [cache.get(key) for key in keys]
    missing = [i for i, answer in enumerate(answers) if answer is None]
    if on_batch and len(missing) < len(prompts):
        on_batch(len(prompts) - len(missing))
    if not missing:
        return [answer or "" for answer in answers]
    model, tokenizer = load()
    model.eval()
    for start in range(0, len(missing), args.batch_size):
        chunk = missing[start : start + args.batch_size]
        generated = generate_answers(
            model,
            tokenizer,
            [prompts[i] for i in chunk],
            max_prompt_tokens=max_prompt_tokens,
            max_new_tokens=args.max_new_tokens,
            batch_size=args.batch_size,
        )
        for i, answer in zip(chunk, generated, strict=True):
            cache.put(keys[i], answer, base)
            answers[i] = answer
        if on_batch:
            on_batch(len(chunk))
    return [answer or "" for answer in answers]


def sft_rows(prompts: Sequence[Messages], answers: Sequence[str]) -> list[dict[str, Any]]:
    """OpenAI `messages` rows: each prompt followed by its answer; prompts whose answer is empty are left out."""
    return [
        {"messages": [*prompt, {"role": "assistant", "content": answer}]}
        for prompt, answer in zip(prompts, answers, strict=True)
        if answer
    ]


def pair_rows(
    prompts: Sequence[Messages], chosen: Sequence[str], rejected: Sequence[str]
) -> tuple[list[dict[str, Any]], int]:
    """TRL prompt/chosen/rejected rows, the teacher's answer chosen; and how many prompts made no pair (an empty
    answer on either side, or the same answer on both)."""
    rows = [
        {"prompt": prompt, "chosen": good, "rejected": bad}
        for prompt, good, bad in zip(prompts, chosen, rejected, strict=True)
        if good.strip() and bad.strip() and good.strip() != bad.strip()
    ]
    return rows, len(prompts) - len(rows)
