"""GPU check in one run: pixiu's LoRA SFT against HF Trainer + peft, a bf16 loss curve, and multi-adapter serving.

Random-initialised models of Qwen2.5-0.5B and 1.5B shape (no hub), random token ids of variable length:

  (a) pixiu's training step (StepBatches, collate, labelled_loss, attach_lora, as core/pixiu/recipes/lora_sft.py
      runs them) against `transformers.Trainer` + peft, both bf16, same examples and rows per step, with gradient
      checkpointing off and on: real (non-padding) tokens/s and peak GPU memory, as ratios;
  (b) pixiu's bf16 loss curve against fp32 over --curve-steps steps;
  (c) pixiu's serving engine: --adapters adapters mixed in the batch against the base alone, tokens/s.

Targets: (a) pixiu >= 1.5x HF's real tokens/s at no more peak memory; (c) mixed >= 0.9x base-only.
Prints a JSON summary at the end and writes it to --out. Run by hand (under 8 minutes on one H200):

    python bench/gpu_check.py --out gpu_check.json
    python bench/gpu_check.py --smoke            # tiny shapes on the CPU, seconds: checks the script itself
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from serve_throughput import make_adapters, run_engine  # bench/ is on sys.path when this script runs
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForSeq2Seq,
    PrinterCallback,
    Qwen2Config,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from pixiu.data import IGNORE_INDEX, StepBatches, TokenizedExample, collate
from pixiu.devices import peak_memory, reset_peak_memory, resolve_device
from pixiu.fused_lora import fuse_lora_layers
from pixiu.lora import attach_lora, enable_gradient_checkpointing
from pixiu.loss import labelled_loss
from pixiu.models import load_base
from pixiu.serve.adapters import BASE
from pixiu.serve.engine import Engine
from pixiu.tiny import train_tiny_tokenizer

SHAPES: dict[str, dict[str, Any]] = {  # the published configs of Qwen2.5-0.5B and -1.5B
    "qwen2.5-0.5b": {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2},
    "qwen2.5-1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2},
}  # fmt: skip
SMOKE_SHAPES: dict[str, dict[str, Any]] = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}  # fmt: skip
QWEN_VOCAB = 151936
LORA: dict[str, Any] = {
    "r": 8,
    "alpha": 16,
    "dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
ANSWER_IDS = 32  # answers use this many distinct ids, so the loss has something to learn in a few steps
SEED = 0


@dataclass(frozen=True)
class Plan:
    """How much each part runs: full size on a GPU, tiny with --smoke."""

    shapes: dict[str, dict[str, Any]]
    vocab: int
    examples: int
    min_len: int
    max_len: int
    answer_len: tuple[int, int]
    rows: int
    warmup: int
    steps: int
    curve_steps: int
    lr: float
    curve_lr: float
    """Higher than `lr`, so that 20 steps move the loss enough to compare the two curves."""
    requests: int
    prompt_len: tuple[int, int]
    max_tokens: int
    adapters: int
    rounds: int


def full_plan(steps: int, curve_steps: int) -> Plan:
    """The measurement on a GPU."""
    return Plan(
        SHAPES, QWEN_VOCAB, 512, 64, 1024, (8, 64), 8, 3, steps, curve_steps, 2e-4, 1e-3, 64, (32, 512), 64, 8, 3
    )


def smoke_plan() -> Plan:
    """Tiny shapes and 2-3 steps: checks the script on a CPU in seconds."""
    return Plan(SMOKE_SHAPES, 0, 24, 16, 64, (4, 8), 4, 1, 2, 3, 1e-3, 1e-3, 6, (4, 12), 4, 8, 1)


def make_base(folder: Path, shape: dict[str, Any], vocab: int, device: torch.device) -> Path:
    """Save a random-initialised Qwen2 model of `shape` (bf16 weights) with pixiu's tiny tokenizer into `folder`."""
    tokenizer = train_tiny_tokenizer()
    config = Qwen2Config(
        vocab_size=vocab or len(tokenizer),
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    torch.manual_seed(SEED)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model
    free(device)
    return folder


def make_examples(plan: Plan, vocab: int, seed: int) -> list[TokenizedExample]:
    """Random prompts of --min-len..--max-len tokens ending in a labelled answer drawn from `ANSWER_IDS` ids."""
    rng = random.Random(seed)
    low = 16  # clear of the special tokens
    examples = []
    for _ in range(plan.examples):
        length = rng.randint(plan.min_len, plan.max_len)
        answer = rng.randint(*plan.answer_len)
        prompt = [rng.randrange(low, vocab) for _ in range(length - answer)]
        reply = [rng.randrange(low, low + ANSWER_IDS) for _ in range(answer)]
        examples.append(TokenizedExample(prompt + reply, [IGNORE_INDEX] * len(prompt) + reply))
    return examples


def free(device: torch.device) -> None:
    """Release what the last run left, so the next one's peak memory is its own."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def sync(device: torch.device) -> None:
    """Wait for the device's queued work, so wall-clock times cover it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_pixiu(
    folder: Path, examples: list[TokenizedExample], plan: Plan, device: torch.device, *, dtype: torch.dtype,
    checkpointing: bool, steps: int, warmup: int, lr: float,
) -> dict[str, Any]:  # fmt: skip
    """pixiu's training loop on `device`; returns losses, timed steps' real tokens and seconds, and peak memory."""
    base, tokenizer = load_base(str(folder), dtype=dtype, device=device)
    if checkpointing:
        enable_gradient_checkpointing(base)
    torch.manual_seed(SEED)
    model = attach_lora(base, **LORA)
    fuse_lora_layers(model)  # as pixiu.training.trainable_adapter does (where base and LoRA share one dtype)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    mean_len = statistics.fmean(len(e) for e in examples)
    batches = StepBatches(examples, round(plan.rows * mean_len), SEED)  # as many real tokens per step as HF's
    model.train()
    reset_peak_memory(device)
    losses, tokens, seconds = [], [], []
    for step in range(warmup + steps):
        sync(device)
        began = time.perf_counter()
        indices = batches.for_step(step)
        batch = {k: v.to(device) for k, v in collate(examples, indices, tokenizer.pad_token_id).items()}
        loss_sum, count = labelled_loss(model, batch)
        (loss_sum / max(count, 1)).backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss_sum.item() / max(count, 1))
        sync(device)
        if step >= warmup:
            seconds.append(time.perf_counter() - began)
            tokens.append(sum(len(examples[i]) for i in indices))
    memory = peak_memory(device)
    del model, base, optimizer, trainable
    free(device)
    return {"losses": losses, "tokens": tokens, "seconds": seconds, "peak_memory": memory}


class StepTimer(TrainerCallback):
    """Seconds of each Trainer step after the warm-up ones, from `on_step_begin` to `on_step_end`."""

    def __init__(self, device: torch.device, warmup: int):
        self.device, self.warmup = device, warmup
        self.seconds: list[float] = []
        self._began = 0.0
        self._step = 0

    def on_step_begin(self, args, state, control, **kwargs):
        """Start timing a step."""
        sync(self.device)
        self._began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        """Stop timing a step."""
        sync(self.device)
        if self._step >= self.warmup:
            self.seconds.append(time.perf_counter() - self._began)
        self._step += 1


class CountingCollator:
    """`DataCollatorForSeq2Seq(padding="longest")` that records the real tokens of every batch it builds, in order."""

    def __init__(self, tokenizer):
        self.inner = DataCollatorForSeq2Seq(tokenizer, padding="longest")
        self.tokens: list[int] = []

    def __call__(self, features):
        """Pad the batch and record its real tokens."""
        self.tokens.append(sum(len(f["input_ids"]) for f in features))
        return self.inner(features)


def train_hf(
    folder: Path, examples: list[TokenizedExample], plan: Plan, device: torch.device, *, checkpointing: bool
) -> dict[str, Any]:
    """`transformers.Trainer` + peft in bf16 with its defaults (random batches of --rows, padding mask, full loss)."""
    base, tokenizer = load_base(str(folder), dtype=torch.bfloat16, device=device)
    torch.manual_seed(SEED)
    model = attach_lora(base, **LORA)
    rows = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e), "labels": e.labels} for e in examples]
    collator = CountingCollator(tokenizer)
    timer = StepTimer(device, plan.warmup)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=plan.rows,
            max_steps=plan.warmup + plan.steps,
            learning_rate=plan.lr,
            lr_scheduler_type="constant",
            weight_decay=0.0,
            max_grad_norm=1.0,
            bf16=True,
            gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            dataloader_num_workers=0,
            remove_unused_columns=False,
            use_cpu=device.type == "cpu",
            seed=SEED,
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)
        reset_peak_memory(device)
        trainer.train()
        memory = peak_memory(device)
    tokens = collator.tokens[plan.warmup : plan.warmup + plan.steps]  # batch k is built for step k
    del trainer, model, base
    free(device)
    return {"tokens": tokens, "seconds": timer.seconds, "peak_memory": memory}


def rate(run: dict[str, Any]) -> float:
    """Real tokens per second over the timed steps."""
    return sum(run["tokens"]) / sum(run["seconds"])


def training_part(folder: Path, examples: list[TokenizedExample], plan: Plan, device: torch.device) -> dict:
    """(a): pixiu against HF Trainer + peft, bf16, checkpointing off and on."""
    result = {}
    for checkpointing in (False, True):
        hf = train_hf(folder, examples, plan, device, checkpointing=checkpointing)
        pixiu = train_pixiu(
            folder, examples, plan, device, dtype=torch.bfloat16, checkpointing=checkpointing,
            steps=plan.steps, warmup=plan.warmup, lr=plan.lr,
        )  # fmt: skip
        result["checkpointing_on" if checkpointing else "checkpointing_off"] = {
            "pixiu_tokens_per_second": rate(pixiu),
            "hf_tokens_per_second": rate(hf),
            "pixiu_peak_gib": pixiu["peak_memory"]["gib"],
            "hf_peak_gib": hf["peak_memory"]["gib"],
            "memory_kind": pixiu["peak_memory"]["kind"],
            "pixiu_real_tokens_per_step": statistics.fmean(pixiu["tokens"]),
            "hf_real_tokens_per_step": statistics.fmean(hf["tokens"]),
            "speed_ratio": rate(pixiu) / rate(hf),
            "memory_ratio": pixiu["peak_memory"]["gib"] / hf["peak_memory"]["gib"],
        }
    return result


def curve_part(folder: Path, examples: list[TokenizedExample], plan: Plan, device: torch.device) -> dict:
    """(b): the same pixiu run in bf16 and in fp32, loss by step."""
    runs = {
        name: train_pixiu(
            folder,
            examples,
            plan,
            device,
            dtype=dtype,
            checkpointing=False,
            steps=plan.curve_steps,
            warmup=0,
            lr=plan.curve_lr,
        )["losses"]
        for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32))
    }
    gaps = [abs(b - f) / f for b, f in zip(runs["bf16"], runs["fp32"], strict=True)]
    return {
        "bf16": runs["bf16"],
        "fp32": runs["fp32"],
        "max_relative_gap": max(gaps),
        "fp32_drop": runs["fp32"][0] - runs["fp32"][-1],
        "bf16_drop": runs["bf16"][0] - runs["bf16"][-1],
    }


def serving_part(folder: Path, plan: Plan, vocab: int, device: torch.device) -> dict:
    """(c): pixiu's engine, base only against --adapters adapters mixed, best of --rounds alternated rounds."""
    model, _ = load_base(str(folder), dtype=torch.bfloat16, device=device)
    rng = random.Random(SEED)
    prompts = [[rng.randrange(16, vocab) for _ in range(rng.randint(*plan.prompt_len))] for _ in range(plan.requests)]
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_adapters(model, Path(tmp), plan.adapters, LORA["r"])
        names = [f"a{i}" for i in range(plan.adapters)]
        engine = Engine(model, stop_ids=[], max_batch=len(prompts), max_waiting=len(prompts)).start()
        for name, adapter in zip(names, folders, strict=True):
            engine.load_adapter(name, adapter)
    mixed = [names[i % len(names)] for i in range(len(prompts))]
    run_engine(engine, [BASE] * 4, prompts[:4], 4)  # warm-up
    base_runs, mixed_runs = [], []
    for _ in range(plan.rounds):
        base_runs.append(run_engine(engine, [BASE] * len(prompts), prompts, plan.max_tokens))
        mixed_runs.append(run_engine(engine, mixed, prompts, plan.max_tokens))
    engine.stop()
    del engine, model
    free(device)
    base_rate = max(tokens / seconds for seconds, tokens in base_runs)
    mixed_rate = max(tokens / seconds for seconds, tokens in mixed_runs)
    return {
        "requests": len(prompts),
        "max_tokens": plan.max_tokens,
        "adapters": plan.adapters,
        "base_tokens_per_second": base_rate,
        "mixed_tokens_per_second": mixed_rate,
        "mixed_over_base": mixed_rate / base_rate,
    }


def main() -> None:
    """Run (a), (b) and (c), print a JSON summary and write it to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="Tiny shapes, 2-3 steps, on --device (default cpu).")
    parser.add_argument("--device", help="Where to run [default: cuda, or cpu with --smoke].")
    parser.add_argument("--steps", type=int, default=20, help="Timed training steps per run in (a).")
    parser.add_argument("--curve-steps", type=int, default=20, help="Steps of the bf16/fp32 loss curves in (b).")
    parser.add_argument("--out", type=Path, help="Write the JSON summary here too.")
    args = parser.parse_args()
    plan = smoke_plan() if args.smoke else full_plan(args.steps, args.curve_steps)
    device = resolve_device(args.device or ("cpu" if args.smoke else "cuda"))
    started = time.perf_counter()
    summary: dict[str, Any] = {"device": str(device), "smoke": args.smoke, "lora": LORA, "training": {}}
    if device.type == "cuda":
        summary["gpu"] = torch.cuda.get_device_name(device)
    with tempfile.TemporaryDirectory() as tmp:
        for index, (name, shape) in enumerate(plan.shapes.items()):
            folder = make_base(Path(tmp) / name, shape, plan.vocab, device)
            vocab = min(plan.vocab or len(train_tiny_tokenizer()), 32000)  # ids the data draws from
            examples = make_examples(plan, vocab, SEED)
            print(f"[{time.perf_counter() - started:5.0f}s] (a) training, {name}", flush=True)
            summary["training"][name] = training_part(folder, examples, plan, device)
            if index == 0:  # (b) and (c) on the smaller shape
                print(f"[{time.perf_counter() - started:5.0f}s] (b) bf16 / fp32 loss curve, {name}", flush=True)
                summary["loss_curve"] = {"shape": name, **curve_part(folder, examples, plan, device)}
                print(f"[{time.perf_counter() - started:5.0f}s] (c) serving, {name}", flush=True)
                summary["serving"] = {"shape": name, **serving_part(folder, plan, vocab, device)}
    training = [t for shape in summary["training"].values() for t in shape.values()]
    summary["targets"] = {
        "training_speed_ratio_min": min(t["speed_ratio"] for t in training),
        "training_memory_ratio_max": max(t["memory_ratio"] for t in training),
        "training_met": all(t["speed_ratio"] >= 1.5 and t["memory_ratio"] <= 1.0 for t in training),
        "serving_met": summary["serving"]["mixed_over_base"] >= 0.9,
    }
    summary["seconds"] = time.perf_counter() - started
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
