"""What the benches against trl share: one side per child process (so each has its own peak RSS), a per-step timer
for a transformers Trainer, and the throughput summary of a side's timed steps."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

TRL_MISSING = "trl is not installed; this bench compares against it: pip install trl (pixiu itself does not need it)"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
"""The LoRA targets of both sides: the 7 projections."""
SEED = 0


def pixiu_values(settings: dict[str, Any], method: str, lr: float) -> dict[str, Any]:
    """The recipe keys both benches set alike on the pixiu side: fp32 on the CPU, LoRA r 8 / alpha 16 / dropout 0
    on `TARGETS`, constant `lr` from the first step, eval off, one checkpoint after the timed steps."""
    steps = settings["warmup"] + settings["steps"]
    return {
        "base": settings["base"],
        "train.method": method,
        "train.max_steps": steps,
        "train.lr": lr,
        "train.warmup_steps": 0,
        "train.batch_tokens": settings["batch_tokens"],
        "train.save_every": steps,
        "train.keep_checkpoints": 1,
        "train.seed": SEED,
        "train.device": "cpu",
        "train.precision": "fp32",
        "train.gradient_checkpointing": settings["gradient_checkpointing"],
        "lora.r": 8,
        "lora.alpha": 16.0,
        "lora.dropout": 0.0,
        "lora.target_modules": TARGETS,
        "data.eval_records": 0,
    }


def trainer_values(settings: dict[str, Any], output_dir: str, lr: float) -> dict[str, Any]:
    """The Trainer arguments both benches give trl alike: the same steps, constant `lr`, grad clip 1, fp32 on the
    CPU, and no evaluation, logging, saving or progress bar."""
    return {
        "output_dir": output_dir,
        "max_steps": settings["warmup"] + settings["steps"],
        "learning_rate": lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "gradient_checkpointing": settings["gradient_checkpointing"],
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "seed": SEED,
        "dataloader_num_workers": 0,
        "report_to": "none",
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
    }


def lora_config():
    """peft's LoraConfig for the trl side, the same adapter pixiu trains."""
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")


def run_sides(script: Path, work: Path, settings: dict[str, Any], order: str) -> tuple[dict[str, Any], list[str]]:
    """Run the trl and the pixiu side of `script` one after the other (`order`: trl-first or pixiu-first), each
    in its own offline process with its own PIXIU_HOME, on `settings`; each side's results, and the order run."""
    (work / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    env = {**os.environ, "PIXIU_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    names = ["trl", "pixiu"] if order == "trl-first" else ["pixiu", "trl"]
    return {name: _run_child(script, name, work, env) for name in names}, names


def serve_child(
    child: str | None, work: Path, sides: dict[str, Callable[[Path, dict[str, Any]], dict[str, Any]]]
) -> bool:
    """In a side's own process (`--child NAME`): run side `child` on the parent's settings and write its results
    for the parent; False in the parent, which has nothing to do here."""
    if child is None:
        return False
    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    (work / f"{child}.json").write_text(json.dumps(sides[child](work, settings)), encoding="utf-8")
    return True


def _run_child(script: Path, name: str, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run `script --child NAME --work WORK` in its own process; its results (`WORK/NAME.json`), with its own peak
    RSS (ru_maxrss from wait4) in GiB."""
    log = work / f"{name}.log"
    command = [sys.executable, str(script), "--child", name, "--work", str(work)]
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-30:])
        raise SystemExit(f"the {name} side failed (exit {code}); end of {log}:\n{tail}")
    result = json.loads((work / f"{name}.json").read_text(encoding="utf-8"))
    result["peak_rss_gib"] = usage.ru_maxrss / 2**20  # KiB on Linux
    return result


def step_timer():
    """A transformers `TrainerCallback` that records the seconds of each Trainer step (`.seconds`), from
    on_step_begin to on_step_end: the optimiser step with everything it does (for GRPO, the sampling too)."""
    import time

    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Seconds of each Trainer step."""

        def __init__(self) -> None:
            self.seconds: list[float] = []
            self._began = 0.0

        def on_step_begin(self, args, state, control, **kwargs) -> None:
            """Start the clock."""
            self._began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs) -> None:
            """Stop the clock."""
            self.seconds.append(time.perf_counter() - self._began)

    return StepTimer()


def summary(result: dict[str, Any], unit: str) -> dict[str, float]:
    """Throughput figures of one side's timed steps: real tokens and `unit`s (its `unit` list: pairs, rollouts)
    per second, seconds per step, peak RSS; the padding share when the side recorded its padded tensor sizes."""
    seconds, tokens, units = sum(result["seconds"]), sum(result["tokens"]), sum(result[unit])
    figures = {
        "steps": len(result["seconds"]),
        "tokens_per_second": tokens / seconds,
        f"{unit}_per_second": units / seconds,
        "seconds_per_step": seconds / len(result["seconds"]),
        "seconds_per_step_median": statistics.median(result["seconds"]),
        f"{unit}_per_step": units / len(result[unit]),
        "real_tokens_per_step": tokens / len(result["tokens"]),
        "peak_rss_gib": result["peak_rss_gib"],
        "wall_s": result["wall_s"],
    }
    if result.get("padded"):
        figures["padding_fraction"] = 1 - tokens / sum(result["padded"])
    return figures
