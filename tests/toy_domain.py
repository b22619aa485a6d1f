"""A minimal domain for core tests: echo an answer field, the answer also given as the reference; exact match."""

import json
import random
from pathlib import Path

from pixiu import BadRecord, Domain, Example, hookimpl

PIXIU_HOOK_API = ">=1.0,<2"
"""Loaded through an entry point by the `toy_plugin` fixture, the toy domain declares its hook API like any plugin."""


TINY_RUN = [
    "data.max_seq_len=64",
    "train.batch_tokens=256",
    "data.eval_records=2",
    "eval.max_new_tokens=2",
    "eval.limit=1",
    "eval.general=false",
    "train.lr=1e-2",
    "train.max_steps=3",
    "train.save_every=3",
    "train.warmup_steps=0",
    "lora.num_virtual_tokens=4",
    "lora.freeze_layers=1",
]
"""Config overrides for a 3-step run on a tiny model of any tuning method: short rows, one evaluated record."""


def format_record(record: dict) -> Example:
    """{"q": ..., "a": ...} -> a one-turn conversation whose reference is `a`."""
    if not record.get("q") or not record.get("a"):
        raise BadRecord("needs non-empty 'q' and 'a'")
    messages = [{"role": "user", "content": record["q"]}, {"role": "assistant", "content": record["a"]}]
    return Example(messages, reference=record["a"])


def exact_match(predictions, references) -> dict[str, float]:
    """Share of answers equal to the reference, ×100."""
    hits = sum(p == r for p, r in zip(predictions, references, strict=True))
    return {"exact_match": 100.0 * hits / len(references)}


def cjk_share(prompt, answer: str, reference) -> float:
    """Share of the answer's characters that are Chinese: a dense reward even a tiny random model can learn."""
    return sum("\u4e00" <= ch <= "\u9fff" for ch in answer) / max(len(answer), 1)


TOY = Domain(
    name="toy",
    description="test domain",
    version="0.0.1",
    formatter=format_record,
    parser=str.strip,
    metrics=exact_match,
    reward=cjk_share,
)


@hookimpl
def register_domains(register):
    """Register the toy domain."""
    register(TOY)


COLOURS = ["红", "绿", "蓝", "白", "黑"]
"""The answers of the toy data and pairs."""


def write_toy_data(path: Path, n: int, seed: int = 0) -> Path:
    """Write `n` toy records: colour questions with one-word answers."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            colour = rng.choice(COLOURS)
            record = {"q": f"第{i}个盒子是{colour}色的。" * rng.randint(1, 4) + "它是什么颜色？", "a": colour}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def write_toy_pairs(path: Path, n: int) -> Path:
    """Write `n` preference pairs, a separable preference: the colour the question names is chosen, another
    colour is rejected."""
    rows = []
    for i in range(n):
        colour, other = COLOURS[i % 5], COLOURS[(i * 3 + 1) % 5] if (i * 3 + 1) % 5 != i % 5 else COLOURS[(i + 2) % 5]
        rows.append({"prompt": f"第{i}个盒子是{colour}色的。它是什么颜色？", "chosen": colour, "rejected": other})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
