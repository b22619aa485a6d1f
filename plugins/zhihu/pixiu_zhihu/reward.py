"""The zhihu domain's reward: how close one summary comes to the reference summary."""

from __future__ import annotations

from pixiu import Messages
from pixiu_zhihu.metrics import rouge_f
from pixiu_zhihu.parser import parse_summary


def summary_reward(prompt: Messages, answer: str, reference: str) -> float:
    """Score one answer by the ROUGE-L F1 of its summary (`parse_summary`) against the reference, as the metrics do.

    Args:
        prompt: The chat messages the answer replies to (unused: the reference decides).
        answer: The model's answer, chat tokens stripped.
        reference: The reference summary (the parsed gold answer).

    Returns:
        ROUGE-L F1 in [0, 1] on jieba words (`summary_metrics`' `rouge_l` ÷ 100): 1.0 for the reference
        itself, 0.0 for empty text or text sharing no word with it.
    """
    return rouge_f(parse_summary(answer), reference)["rouge-l"]
