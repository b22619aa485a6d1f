"""An LLM judge (PandaLM, Vicuna's GPT-4 judge): base vs adapter answers compared pairwise by a teacher model.

Each prompt is judged twice, the base's answer first and then the adapter's, to cancel the judge's position
bias. As in MT-Bench, an answer wins only when it wins in both orders; any other pair of verdicts (one that
flips with the order, or a tie in either) is a tie, and so are two identical answers. A prompt whose verdict
cannot be read in either order is counted as unparsed and left out of the win rate. The win rate is
(wins + ties / 2) / judged prompts, with a 95% Wilson score interval on that proportion.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixiu.devices import Precision
from pixiu.domain import Example, Messages
from pixiu.evaluation import EvalSetup, eval_setup, progress_bars, variant_answers
from pixiu.files import atomic_write_json, read_jsonl, write_jsonl
from pixiu.report import write_report
from pixiu.runs import JUDGE_FILE, METRICS_FILE, PREDICTIONS_FILE
from pixiu.teacher import Teacher, TeacherCache

JUDGE_CACHE_FILE = "judge_cache.jsonl"
"""The judge's replies in a run folder, keyed by teacher model and prompt: a second judge run asks nothing twice."""
JUDGE_MAX_TOKENS = 512
"""Room for the judge's short explanation and its verdict."""

JUDGE_SYSTEM_PROMPT = (
    "You are a fair and careful judge. You compare two AI assistants' answers to the same question and decide "
    "which one is more helpful, correct and relevant. Do not let the order of the answers, their length or the "
    "assistants' names influence you."
)
"""The judge's system prompt (part of every cached request's key)."""
JUDGE_TEMPLATE = """[Question]
{question}

[Reference answer]
{reference}

[The start of Assistant A's answer]
{a}
[The end of Assistant A's answer]

[The start of Assistant B's answer]
{b}
[The end of Assistant B's answer]

Compare the two answers with the reference answer in mind. Explain briefly, then give your verdict on the last \
line, exactly "[[A]]" if Assistant A is better, "[[B]]" if Assistant B is better, or "[[C]]" for a tie."""
"""Vicuna's pairwise judge prompt, with the gold answer as a reference (MT-Bench's reference-guided variant)."""
Z_95 = 1.959963984540054
"""The standard normal quantile of a two-sided 95% interval."""

_VERDICT = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_BARE = {"a": "A", "b": "B", "c": "C", "tie": "C"}


def parse_verdict(text: str) -> str | None:
    """The verdict "A", "B" or "C" (tie) of a judge's reply: its last `[[A]]`/`[[B]]`/`[[C]]`, or a bare reply
    of just A, B, C or tie; None when it says none of these."""
    found = _VERDICT.findall(text)
    if found:
        return _BARE[found[-1].lower()]
    return _BARE.get(text.strip().strip(".[]*").lower())


def combine(base_first: str | None, adapter_first: str | None) -> str:
    """The outcome for the adapter of the two verdicts ("win", "loss", "tie" or "unparsed").

    `base_first` judged the base's answer as A; `adapter_first` the adapter's as A.
    """
    if base_first is None or adapter_first is None:
        return "unparsed"
    adapter = {"B": "win", "A": "loss", "C": "tie"}[base_first]
    swapped = {"A": "win", "B": "loss", "C": "tie"}[adapter_first]
    return adapter if adapter == swapped else "tie"


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion `successes / n` (a tie counts half a success); (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class JudgeItem:
    """One prompt to judge: where it came from, the question, the gold answer, and both variants' answers."""

    where: str
    question: str
    gold: str
    base: str
    adapter: str


@dataclass
class JudgeResult:
    """Every judged prompt (for judge.jsonl) and the tally (for metrics.json's `judge` section)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Adapter wins, ties, base wins, unparsed prompts, the win rate and its 95% Wilson interval."""
        counts = {name: sum(r["outcome"] == name for r in self.rows) for name in ("win", "tie", "loss", "unparsed")}
        judged = counts["win"] + counts["tie"] + counts["loss"]
        score = counts["win"] + counts["tie"] / 2
        low, high = wilson_interval(score, judged)
        return {
            "prompts": len(self.rows),
            "judged": judged,
            "adapter_wins": counts["win"],
            "ties": counts["tie"],
            "base_wins": counts["loss"],
            "unparsed": counts["unparsed"],
            "win_rate": round(score / judged, 4) if judged else None,
            "ci95": [round(low, 4), round(high, 4)],
            "interval": "wilson",
        }


def question_text(prompt: Messages) -> str:
    """A prompt's messages as the judge reads the question: the user's text, earlier turns labelled by role."""
    if len(prompt) == 1:
        return prompt[0]["content"]
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def judge_pairs(
    items: Sequence[JudgeItem], ask: Callable[[str], str], on_item: Callable[[int], None] | None = None
) -> JudgeResult:
    """Ask the judge about every item in both orders (`ask` sends one prompt and returns the reply); two
    identical answers are a tie without asking."""
    result = JudgeResult()
    for item in items:
        verdicts: list[str | None]
        if item.base.strip() == item.adapter.strip():  # the same answer twice is a tie; the judge is not asked
            replies, verdicts = ["", ""], ["C", "C"]
        else:
            replies = [
                ask(JUDGE_TEMPLATE.format(question=item.question, reference=item.gold, a=a, b=b))
                for a, b in ((item.base, item.adapter), (item.adapter, item.base))
            ]
            verdicts = [parse_verdict(reply) for reply in replies]
        result.rows.append(
            {
                "where": item.where,
                "question": item.question,
                "gold": item.gold,
                "base": item.base,
                "adapter": item.adapter,
                "base_first": {"reply": replies[0], "verdict": verdicts[0]},
                "adapter_first": {"reply": replies[1], "verdict": verdicts[1]},
                "outcome": combine(*verdicts),
            }
        )
        if on_item:
            on_item(1)
    return result


def judge_adapter(
    domain_name: str,
    *,
    adapter: str,
    teacher_url: str,
    teacher_model: str,
    api_key: str | None = None,
    base: str | None = None,
    data_path: Path | None = None,
    limit: int | None = None,
    device: str = "auto",
    precision: Precision = "auto",
) -> dict[str, Any]:
    """Judge adapter vs base on a domain's held-out prompts (or `data_path`) through a teacher endpoint.

    The answers are the run's predictions.jsonl when it holds both variants' answers to every prompt judged;
    otherwise they are generated. Writes judge.jsonl and a `judge` section into the run's metrics.json
    (and rebuilds its report.html); judge requests are cached in the run's judge_cache.jsonl, so running
    again resumes. Returns the `judge` section.
    """
    setup = eval_setup(domain_name, base=base, adapter=adapter, data_path=data_path, limit=limit)
    run_dir = setup.adapter_dir
    assert run_dir is not None  # an adapter was given
    examples = setup.examples[: setup.config.eval.limit] if setup.config.eval.limit else setup.examples
    answers = None if data_path else recorded_answers(run_dir, examples)
    source = str(run_dir / PREDICTIONS_FILE)
    if answers is None:
        answers, source = _generate(setup, examples, run_dir, device=device, precision=precision), "generated"
    items = [
        JudgeItem(e.where, question_text(e.messages[:-1]), e.messages[-1]["content"], base_answer, adapter_answer)
        for e, base_answer, adapter_answer in zip(examples, answers["base"], answers["adapter"], strict=True)
    ]
    teacher = Teacher(
        teacher_url,
        teacher_model,
        TeacherCache(run_dir / JUDGE_CACHE_FILE),
        system_prompt=JUDGE_SYSTEM_PROMPT,
        max_tokens=JUDGE_MAX_TOKENS,
        api_key=api_key,
    )
    with progress_bars() as progress:
        task = progress.add_task(f"judge {setup.domain.name} ({teacher_model})", total=len(items))
        result = judge_pairs(items, teacher.ask, on_item=functools.partial(progress.advance, task))
    write_jsonl(run_dir / JUDGE_FILE, result.rows)
    section = {
        **result.summary(),
        "teacher_model": teacher_model,
        "teacher_url": teacher.url,
        "data": setup.source,
        "answers": source,
        "requests": teacher.calls,
    }
    metrics_path = run_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    atomic_write_json(metrics_path, {**metrics, "judge": section})
    write_report(run_dir)
    return section


def recorded_answers(run_dir: Path, examples: Sequence[Example]) -> dict[str, list[str]] | None:
    """Both variants' answers to `examples` from the run's predictions.jsonl (matched by `where`), or None when
    the file is missing or lacks an answer to one of them."""
    path = run_dir / PREDICTIONS_FILE
    if not path.is_file():
        return None
    rows = {row.get("where"): row for row in read_jsonl(path)}
    found = [rows.get(e.where) for e in examples]
    if not all(row and isinstance(row.get("base"), str) and isinstance(row.get("adapter"), str) for row in found):
        return None
    return {label: [row[label] for row in found if row] for label in ("base", "adapter")}


def _generate(
    setup: EvalSetup, examples: Sequence[Example], adapter_dir: Path, *, device: str, precision: Precision
) -> dict[str, list[str]]:
    """Greedy base and adapter answers to the examples' prompts, as `pixiu domain eval` generates them."""
    from pixiu.devices import placement
    from pixiu.lora import load_adapter
    from pixiu.models import load_base

    target, dtype = placement(device, precision)
    base_model, tokenizer = load_base(setup.base, dtype=dtype, device=target)
    model = load_adapter(base_model, adapter_dir)
    prompts = [e.messages[:-1] for e in examples]
    max_len = setup.config.data.max_seq_len
    return variant_answers(model, tokenizer, prompts, setup.config.eval, max_prompt_tokens=max_len, title="judge")
