"""Core's `chat` domain: the "no vertical" case, a general assistant trained on records of any standard format.

Each record is read in its own format (Alpaca, ShareGPT / Vicuna or OpenAI messages, see `pixiu.formats`); an
answer is scored against the gold answer by ROUGE-L (`pixiu.similarity`), which also serves as the reward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pixiu import Domain, Messages, __version__, hookimpl
from pixiu.formats import to_messages
from pixiu.similarity import rouge_l, text_units

_HERE = Path(__file__).resolve().parent


def chat_metrics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-L F ×100 of the answers against the gold answers, and the answers' mean length in text units
    (a Chinese character or a Latin word each), to see whether an adapter answers longer or shorter."""
    scores = [rouge_l(p, r) for p, r in zip(predictions, references, strict=True)]
    lengths = [len(text_units(p)) for p in predictions]
    return {"rouge_l": 100.0 * sum(scores) / len(scores), "mean_answer_length": sum(lengths) / len(lengths)}


def chat_reward(prompt: Messages, answer: str, reference: str) -> float:
    """ROUGE-L F of the answer against the gold answer, in [0, 1], for `--method grpo`."""
    return rouge_l(answer, reference)


@hookimpl
def register_domains(register: Callable[[Domain], None]) -> None:
    """Register the `chat` domain."""
    register(
        Domain(
            name="chat",
            description="General chat: Alpaca, ShareGPT or OpenAI messages records, any mix; scored by ROUGE-L.",
            version=__version__,
            formatter=to_messages,
            parser=str.strip,
            metrics=chat_metrics,
            reward=chat_reward,
            default_config=_HERE / "configs" / "smollm2_135m_lora.yaml",
            sample_data=_HERE / "sample_data" / "chat_sample.jsonl",
        )
    )
