"""Summary scores: ROUGE-1/2/L on jieba words (rouge-chinese, as LLaMA-Factory and LawBench report them) and lengths."""

from __future__ import annotations

import logging
from collections.abc import Sequence


def summary_metrics(preds: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Score predicted summaries against reference summaries.

    Each text is segmented with jieba and scored with `rouge-chinese` on the space-joined words; F1 is
    averaged over examples and reported ×100. An example whose prediction or reference is empty scores
    0, as in LLaMA-Factory's `ComputeSimilarity`.

    Args:
        preds: One predicted summary per example (e.g. from `parse_summary`).
        refs: The reference summary per example, in the same order.

    Returns:
        `rouge_1`, `rouge_2`, `rouge_l` (F1 ×100); `pred_chars` and `ref_chars`, the mean length in
        characters; `length_ratio`, total predicted over total reference characters (1.0 = as long as the
        references; above 1, wordier; the source text is not given to metrics, so this is not the
        summary-to-source compression). pixiu passes one prediction per reference, at least one.
    """
    totals = {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    for pred, ref in zip(preds, refs, strict=True):
        for name, score in rouge_f(pred, ref).items():
            totals[name] += score
    n = len(refs)
    pred_chars = sum(len(p.strip()) for p in preds)
    ref_chars = sum(len(r.strip()) for r in refs)
    return {
        "rouge_1": 100 * totals["rouge-1"] / n,
        "rouge_2": 100 * totals["rouge-2"] / n,
        "rouge_l": 100 * totals["rouge-l"] / n,
        "pred_chars": pred_chars / n,
        "ref_chars": ref_chars / n,
        "length_ratio": pred_chars / ref_chars if ref_chars else 0.0,
    }


def rouge_f(pred: str, ref: str) -> dict[str, float]:
    """ROUGE-1/2/L F1 (in [0, 1]) of one summary against its reference, on jieba words; all 0 if either is empty."""
    from rouge_chinese import Rouge

    hypothesis, reference = _words(pred), _words(ref)
    if not hypothesis or not reference:
        return {"rouge-1": 0.0, "rouge-2": 0.0, "rouge-l": 0.0}
    scores = Rouge().get_scores(hypothesis, reference)[0]
    return {name: float(score["f"]) for name, score in scores.items()}


def _words(text: str) -> str:
    """jieba words of `text` joined by single spaces ("" for blank text)."""
    import jieba

    jieba.setLogLevel(logging.WARNING)  # not "Building prefix dict…" on every first use
    return " ".join(word for word in jieba.cut(text or "") if word.strip())
