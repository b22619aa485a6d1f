"""Raw zhihu records (a question with its answers, or a CSL paper abstract) -> chat messages for summarisation.

The prompt is kept compact for small models: the question, then its most up-voted answers, all cut to a
character budget (`ZhihuSettings`, the recipe's `plugins.zhihu` section: 3 answers in 100 characters by default).
SmolLM2's tokenizer spends about 1.7-2 tokens per Chinese character, so with the summary (15-30 characters) and
the chat template an example stays near 256 tokens.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from pixiu import BadRecord
from pixiu.config import Section

SYSTEM_PROMPT = "你是知乎问答总结助手，用一句话概括高赞回答的要点。"
CSL_SYSTEM_PROMPT = "你是学术摘要助手，根据论文摘要拟一个简洁的标题。"
TOP_K = 3
"""Default of `ZhihuSettings.top_answers`."""
MAX_PROMPT_CHARS = 100
"""Default of `ZhihuSettings.max_prompt_chars`."""
MAX_TITLE_CHARS = 40
"""A question title is cut to this many characters so that the answers keep most of the budget."""
MAX_DETAIL_CHARS = 20
"""The question's detail adds at most this many characters, and only when the answers leave room."""
MIN_ANSWER_SHARE = 15
"""An answer gets at least this many characters, or is left out: a few characters say nothing."""
REFERENCE_KINDS = ("user", "teacher", "silver")
"""Where a `summary` came from: the user, a teacher model, or the extractive fallback (see references.py)."""


class ZhihuSettings(Section, frozen=True):
    """The zhihu domain's recipe section `plugins.zhihu`: how much of a question goes into one prompt."""

    top_answers: int = Field(TOP_K, gt=0)
    """Answers shown per question, the most up-voted first."""
    max_prompt_chars: int = Field(MAX_PROMPT_CHARS, ge=MAX_TITLE_CHARS)
    """Characters of question and answers in one prompt (or of a CSL abstract), labels and line breaks included;
    at least the 40 a title may take."""


DEFAULT_SETTINGS = ZhihuSettings()
"""Today's prompt shape: the 3 most up-voted answers within 100 characters."""


def format_record(record: dict[str, Any], settings: ZhihuSettings = DEFAULT_SETTINGS) -> list[dict[str, str]]:
    """Turn one record into system, user and gold assistant messages.

    Accepted shapes:

    * A Zhihu question (what the spiders yield): `title`, optional `detail`, `answers` (each with `text`
      and `voteup_count`), and the reference `summary` (added by `pixiu zhihu references`, or your own).
    * A CSL-style paper (`abstract`, `title`), as `pixiu zhihu csl-to-jsonl` writes it: abstract -> title.

    Args:
        record: One raw record.
        settings: The recipe's `plugins.zhihu` section (answers shown, character budget).

    Returns:
        Three chat messages; the last is the reference summary.

    Raises:
        BadRecord: The record has no reference summary, no usable answer, or is of an unknown shape.
    """
    if not isinstance(record, dict):
        raise BadRecord(f"expected a JSON object per record, found {type(record).__name__}")
    if "answers" in record:
        summary = _reference(record)
        return [*summary_messages(record, settings), {"role": "assistant", "content": summary}]
    if "abstract" in record:
        abstract = _cut(" ".join(_require_text(record, "abstract").split()), settings.max_prompt_chars)
        return _messages(CSL_SYSTEM_PROMPT, abstract, _require_text(record, "title"))
    raise BadRecord(
        "unknown record format: expected a Zhihu question (`title`, `answers`, `summary`) or a CSL paper "
        f"(`abstract`, `title`); found keys {sorted(record)}"
    )


def summary_messages(record: dict[str, Any], settings: ZhihuSettings = DEFAULT_SETTINGS) -> list[dict[str, str]]:
    """The system and user messages asking for the summary of a question's answers, as training writes them.

    Raises:
        BadRecord: The record has no title or no answer with text.
    """
    prompt = question_prompt(record, top_k=settings.top_answers, max_chars=settings.max_prompt_chars)
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]


def question_prompt(record: dict[str, Any], *, top_k: int, max_chars: int) -> str:
    """Write a question and its `top_k` most up-voted answers as one prompt of at most `max_chars` characters.

    The title comes first, then `答1：…` lines; the budget left after the title is shared evenly by the
    answers, a short answer's unused share going to the next. The detail is added when room is left.

    Args:
        record: A Zhihu question record (`title`, `detail`, `answers`).
        top_k: How many answers to show, by `voteup_count` (ties keep the crawled order).
        max_chars: Character budget of the whole prompt.

    Returns:
        The prompt text.

    Raises:
        BadRecord: The record has no title or no answer with text.
    """
    title = _cut(_require_text(record, "title"), MAX_TITLE_CHARS)
    answers = top_answers(record, top_k)
    if not answers:
        raise BadRecord('field `answers` holds no answer with text; expected [{"text": …, "voteup_count": …}]')
    lines = [f"问题：{title}"]
    used = len(lines[0])
    shown = answers[: max(1, (max_chars - used) // (MIN_ANSWER_SHARE + 4))]  # 4: "答1：" and a line break
    for index, text in enumerate(shown):
        label = f"答{index + 1}："
        share = (max_chars - used - 1) // (len(shown) - index) - len(label)
        lines.append(label + _cut(text, max(share, 1)))
        used += len(lines[-1]) + 1
    detail = " ".join(str(record.get("detail") or "").split())
    room = max_chars - used - 1
    if detail and room >= 8:
        lines.insert(1, _cut(detail, min(room, MAX_DETAIL_CHARS)))
    return "\n".join(lines)


def top_answers(record: dict[str, Any], k: int) -> list[str]:
    """The texts of a question's `k` most up-voted answers (ties keep the crawled order), whitespace collapsed."""
    answers = record.get("answers")
    if not isinstance(answers, list):
        raise BadRecord(f"field `answers` must be a list of answers, found {type(answers).__name__}")
    rows = [a for a in answers if isinstance(a, dict) and isinstance(a.get("text"), str) and a["text"].strip()]
    rows.sort(key=lambda a: -answer_votes(a))
    return [" ".join(a["text"].split()) for a in rows[:k]]


def answer_votes(answer: dict[str, Any]) -> int:
    """An answer's up-votes (`voteup_count`); 0 when missing or not a number."""
    value = answer.get("voteup_count")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reference(record: dict[str, Any]) -> str:
    """The record's reference summary, or BadRecord saying how to get one."""
    summary = record.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        raise BadRecord(
            "no reference summary: add a `summary` field, or run `pixiu zhihu references RAW.jsonl OUT.jsonl` "
            "(teacher model or extractive silver summaries) and train on OUT.jsonl"
        )
    kind = record.get("reference", "user")
    if kind not in REFERENCE_KINDS:
        raise BadRecord(f"field `reference` must be one of {', '.join(REFERENCE_KINDS)}, found {kind!r}")
    return " ".join(summary.split())


def _messages(system: str, prompt: str, answer: str) -> list[dict[str, str]]:
    """System, user and assistant messages."""
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": answer},
    ]


def _require_text(record: dict[str, Any], field: str) -> str:
    """A non-blank string field, or BadRecord naming it."""
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        found = "missing" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
        raise BadRecord(f"field `{field}` must be non-empty text, found {found}")
    return value.strip()


def _cut(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, the last being "…" when something was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"
