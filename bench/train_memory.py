"""Peak memory and speed of pixiu's real training against LLaMA-Factory's, at equal settings, on CPU.

Each run is its own process (so its peak RSS is its own): `python -m pixiu domain train law` and
`llamafactory-cli train` from a separate virtual environment, on the same base model, the same law rows
formatted by pixiu_law's formatter, LoRA r8 alpha16 on the 7 projections, cut to 512 tokens, about
8 x 512 tokens per step, the same learning rate and steps, with gradient checkpointing off and on.
Run by hand (the full measurement takes long on a small CPU):

    python bench/train_memory.py --llamafactory-venv /work/lf-venv [--steps 20] [--rows 512] [--json]

See bench/README.md for what each number includes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from pixiu.config import DEFAULT_BASE
from pixiu.models import resolve_base
from pixiu.runs import LOG_FILE, METRICS_FILE
from pixiu_law.formatter import format_record

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO.parent / "shared" / "data" / "law" / "cail2018_subset_train.jsonl"  # real CAIL2018 cases
SYNTHETIC_DATA = REPO / "plugins" / "law" / "pixiu_law" / "sample_data" / "cail_synthetic.jsonl"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DATASET = "pixiu_law_bench"
SEED = 0


@dataclass
class Settings:
    """What both sides train with."""

    base: str
    steps: int
    cutoff: int
    batch: int
    lr: float
    threads: int
    template: str
    """LLaMA-Factory's chat template; `smollm2` renders what pixiu's SmolLM2 tokenizer template does."""
    recompute_every: int
    """pixiu's `train.recompute_every` with checkpointing on (LLaMA-Factory always recomputes every layer)."""


@dataclass
class Measured:
    """One training process: its peak RSS and its real (non-padding) training throughput."""

    tool: str
    checkpointing: bool
    peak_rss_gib: float
    tokens_per_second: float
    real_tokens: int
    train_seconds: float
    wall_seconds: float
    after_first_step: float
    """Real tokens/s of steps 2..N: without the first step's one-off costs (allocator, thread pool warm-up)."""


def pick_data(path: Path | None) -> Path:
    """The given file, else the real CAIL subset beside the checkout, else the bundled synthetic sample."""
    chosen = path or (REAL_DATA if REAL_DATA.is_file() else SYNTHETIC_DATA)
    if "holdout" in chosen.resolve().parts:
        raise SystemExit(f"{chosen} is under a holdout folder, which benchmarks must not read; pass another --data")
    return chosen


def write_inputs(source: Path, rows: int, folder: Path) -> tuple[Path, int]:
    """Write the first `rows` records as raw JSONL (for pixiu) and as a ShareGPT-style dataset LLaMA-Factory reads.

    Returns the raw file and how many records were written.
    """
    records = []
    with source.open(encoding="utf-8") as stream:
        for line in stream:
            if line.strip():
                records.append(json.loads(line))
            if len(records) == rows:
                break
    raw = folder / "rows.jsonl"
    raw.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    conversations = []
    for record in records:
        messages = format_record(record).messages
        system = [m["content"] for m in messages if m["role"] == "system"]
        turns = [{"role": m["role"], "content": m["content"]} for m in messages if m["role"] != "system"]
        conversations.append({"messages": turns, "system": system[0] if system else ""})
    (folder / f"{DATASET}.json").write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    info = {
        DATASET: {
            "file_name": f"{DATASET}.json",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "system": "system"},
            "tags": {
                "role_tag": "role",
                "content_tag": "content",
                "user_tag": "user",
                "assistant_tag": "assistant",
                "system_tag": "system",
            },
        }
    }
    (folder / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")
    return raw, len(records)


def run_child(command: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Run `command` to completion with its output in `log`; return (its peak RSS in GiB, wall seconds).

    The peak is the child's own `ru_maxrss` from `wait4`, so every run is measured alone.
    """
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)[-30:])
        raise SystemExit(f"{' '.join(command[:4])} ... failed (exit {process.returncode}); end of {log}:\n{tail}")
    return usage.ru_maxrss / 2**20, wall  # ru_maxrss is in KiB on Linux


def run_pixiu(settings: Settings, data: Path, work: Path, checkpointing: bool) -> Measured:
    """Train with `python -m pixiu domain train law` and read its metrics.json and per-step log."""
    out = work / f"pixiu-{'ckpt' if checkpointing else 'nockpt'}"
    values = {
        "train.max_steps": settings.steps,
        "train.batch_tokens": settings.batch * settings.cutoff,
        "train.lr": settings.lr,
        "train.warmup_steps": 0,
        "train.save_every": settings.steps,
        "train.seed": SEED,
        "train.threads": settings.threads,
        "train.device": "cpu",
        "train.precision": "fp32",
        "train.gradient_checkpointing": str(checkpointing).lower(),
        "train.recompute_every": settings.recompute_every,
        "data.max_seq_len": settings.cutoff,
        "data.eval_records": 0,
        "lora.r": 8,
        "lora.alpha": 16,
        "lora.dropout": 0.0,
    }
    command = [sys.executable, "-m", "pixiu", "domain", "train", "law", "--base", settings.base]
    command += ["--data", str(data), "--output", str(out)]
    for key, value in values.items():
        command += ["--set", f"{key}={value}"]
    env = dict(os.environ, PIXIU_HOME=str(work / "pixiu-home"), PYTHONPATH=os.pathsep.join(sys.path))
    peak, wall = run_child(command, env, work / f"{out.name}.log")
    steps = [json.loads(line) for line in (out / LOG_FILE).read_text(encoding="utf-8").splitlines() if line]
    tokens, seconds = sum(s["tokens"] for s in steps), sum(s["seconds"] for s in steps)
    speed = json.loads((out / METRICS_FILE).read_text(encoding="utf-8"))["train"]["tokens_per_second"]
    later = steps[1:] or steps
    steady = sum(s["tokens"] for s in later) / sum(s["seconds"] for s in later)
    return Measured("pixiu", checkpointing, peak, speed, tokens, seconds, wall, steady)


def torchaudio_stub(work: Path) -> Path:
    """A folder holding an empty `torchaudio` module, for LLaMA-Factory's path.

    LLaMA-Factory 0.9.5 imports torchaudio at the top of its multimodal plugin, and uses it only to read audio
    files; no torchaudio build matches torch 2.13 (2.11.1 is the newest, and its library fails to load), so
    the venv has none and this stub stands in for it. Text training never calls it.
    """
    folder = work / "stubs"
    (folder / "torchaudio").mkdir(parents=True, exist_ok=True)
    (folder / "torchaudio" / "__init__.py").write_text('"""Stub: text-only training never calls torchaudio."""\n')
    return folder


def run_llamafactory(settings: Settings, venv: Path, dataset_dir: Path, work: Path, checkpointing: bool) -> Measured:
    """Train with `llamafactory-cli train` from `venv` and read its trainer_state.json."""
    out = work / f"lf-{'ckpt' if checkpointing else 'nockpt'}"
    recipe = {
        "model_name_or_path": settings.base,
        "trust_remote_code": False,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "lora_target": ",".join(TARGETS),
        "dataset": DATASET,
        "dataset_dir": str(dataset_dir),
        "template": settings.template,
        "cutoff_len": settings.cutoff,
        "overwrite_cache": True,
        "preprocessing_num_workers": 1,
        "output_dir": str(out),
        "per_device_train_batch_size": settings.batch,
        "gradient_accumulation_steps": 1,
        "learning_rate": settings.lr,
        "max_steps": settings.steps,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "max_grad_norm": 1.0,
        "seed": SEED,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "plot_loss": False,
        "bf16": False,
        "fp16": False,
        "use_cpu": True,
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        "disable_gradient_checkpointing": not checkpointing,
    }
    config = work / f"{out.name}.yaml"
    config.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(
        PYTHONPATH=str(torchaudio_stub(work)),
        OMP_NUM_THREADS=str(settings.threads),
        CUDA_VISIBLE_DEVICES="",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_HOME=str(work / "hf-home"),
        DISABLE_VERSION_CHECK="1",
    )
    peak, wall = run_child(
        [str(venv / "bin" / "llamafactory-cli"), "train", str(config)], env, work / f"{out.name}.log"
    )
    state = json.loads((out / "trainer_state.json").read_text(encoding="utf-8"))
    last = state["log_history"][-1]  # the Trainer's end-of-training entry
    tokens, seconds = int(state["num_input_tokens_seen"]), float(last["train_runtime"])
    first = state["log_history"][0]  # logged after step 1 (logging_steps=1): cumulative tokens and runtime
    later = (tokens - first["num_input_tokens_seen"], seconds - first["train_runtime"])
    steady = later[0] / later[1] if later[1] > 0 else tokens / seconds
    return Measured("llamafactory", checkpointing, peak, tokens / seconds, tokens, seconds, wall, steady)


def main() -> None:
    """Run pixiu and LLaMA-Factory with checkpointing off and on; print peak RSS, real tokens/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--llamafactory-venv", type=Path, help="Virtual env with llamafactory-cli (else pixiu only).")
    parser.add_argument("--data", type=Path, help="CAIL2018-style JSONL [default: the real subset, else the sample].")
    parser.add_argument("--rows", type=int, default=512, help="First records of --data trained on.")
    parser.add_argument("--steps", type=int, default=20, help="Optimiser steps per run.")
    parser.add_argument("--base", default=DEFAULT_BASE, help="Base model spec; resolved once to a local folder.")
    parser.add_argument("--cutoff", type=int, default=512, help="Tokens per example at most (max_seq_len/cutoff_len).")
    parser.add_argument("--batch", type=int, default=8, help="Rows per step (pixiu: batch_tokens = batch x cutoff).")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of every run.")
    parser.add_argument("--template", default="smollm2", help="LLaMA-Factory chat template of the base model.")
    parser.add_argument("--checkpointing", choices=["off", "on", "both"], default="both")
    parser.add_argument(
        "--recompute-every",
        type=int,
        default=1,
        help="pixiu's train.recompute_every with checkpointing on; shown as on/N (LLaMA-Factory's is always 1).",
    )
    parser.add_argument("--keep", type=Path, help="Keep the run folders and logs here instead of a temp folder.")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")
    args = parser.parse_args()

    settings = Settings(
        resolve_base(args.base),
        args.steps,
        args.cutoff,
        args.batch,
        args.lr,
        args.threads,
        args.template,
        args.recompute_every,
    )
    source = pick_data(args.data)
    modes = {"off": [False], "on": [True], "both": [False, True]}[args.checkpointing]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        raw, rows = write_inputs(source, args.rows, work)
        results: list[Measured] = []
        for checkpointing in modes:
            if not args.json:
                print(f"gradient checkpointing {'on' if checkpointing else 'off'}: pixiu ...", file=sys.stderr)
            results.append(run_pixiu(settings, raw, work, checkpointing))
            if args.llamafactory_venv:
                if not args.json:
                    print("  LLaMA-Factory ...", file=sys.stderr)
                results.append(run_llamafactory(settings, args.llamafactory_venv, work, work, checkpointing))
    ratios = {}
    for checkpointing in modes:
        pair = {r.tool: r for r in results if r.checkpointing == checkpointing}
        if "llamafactory" in pair:
            p, lf = pair["pixiu"], pair["llamafactory"]
            ratios["on" if checkpointing else "off"] = {
                "peak_rss": p.peak_rss_gib / lf.peak_rss_gib,
                "tokens_per_second": p.tokens_per_second / lf.tokens_per_second,
                "after_first_step": p.after_first_step / lf.after_first_step,
            }
    report = {
        "data": str(source),
        "rows": rows,
        "settings": asdict(settings),
        "runs": [asdict(r) for r in results],
        "pixiu_over_llamafactory": ratios,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"data {source} ({rows} rows); base {settings.base}")
    print(f"{settings.steps} steps, batch {settings.batch} x {settings.cutoff} tokens, lr {settings.lr}, LoRA r8 a16")
    header = ("tool", "ckpt", "peak RSS GiB", "real tok/s", "steps 2..N", "real tokens", "train s", "wall s")
    print("{:14} {:5} {:>12} {:>10} {:>10} {:>11} {:>8} {:>7}".format(*header))
    for r in results:
        every = settings.recompute_every if r.tool == "pixiu" else 1
        mode = "off" if not r.checkpointing else "on" if every == 1 else f"on/{every}"
        print(
            f"{r.tool:14} {mode:5} {r.peak_rss_gib:12.2f} {r.tokens_per_second:10.1f} "
            f"{r.after_first_step:10.1f} {r.real_tokens:11d} {r.train_seconds:8.1f} {r.wall_seconds:7.1f}"
        )
    for mode, ratio in ratios.items():
        print(
            f"checkpointing {mode}: pixiu/LLaMA-Factory peak RSS {ratio['peak_rss']:.2f} (target <= 1), "
            f"real tokens/s {ratio['tokens_per_second']:.2f} (target >= 1.4), "
            f"steps 2..N {ratio['after_first_step']:.2f}"
        )


if __name__ == "__main__":
    main()
