"""What every training recipe shares: the run folder's lock, hardware setup, checkpoint loading, the learning-rate
schedule, the per-step log and the run record. Each recipe stays a linear script that calls these."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import torch
import yaml
from peft import PeftModel
from peft.optimizers import create_loraplus_optimizer
from rich.console import Console
from transformers import AutoConfig

from pixiu import __version__
from pixiu.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from pixiu.config import RunConfig, formatter_for, to_dict
from pixiu.data import DEFAULT_CHAT_TEMPLATE, StepBatches
from pixiu.devices import precision_name, resolve_device, resolve_precision
from pixiu.distributed import Ranks
from pixiu.domain import Domain, Example
from pixiu.errors import ConfigError, PixiuError
from pixiu.files import atomic_write_json, atomic_write_text, locked
from pixiu.fused_lora import fuse_lora_layers
from pixiu.lora import (
    adapter_state,
    attach_lora,
    enable_gradient_checkpointing,
    load_trainable_adapter,
    restore_adapter_state,
)
from pixiu.methods import attach_method, method_state, restore_method_state
from pixiu.models import base_config, load_base, resolve_base
from pixiu.progress import TrainProgress
from pixiu.quantize import check_quantize, prepare_quantized
from pixiu.records import load_examples
from pixiu.recurrent import method_refusal
from pixiu.registry import register_adapter, resolve_adapter
from pixiu.report import write_report
from pixiu.resume import check_matches_record
from pixiu.runs import (
    EVAL_SPLIT_FILE,
    LOG_FILE,
    METRICS_FILE,
    RUN_FILE,
    Split,
    held_out_note,
    read_run_file,
    rejects_file,
    split_examples,
    write_split,
)
from pixiu.seq2seq import is_encoder_decoder, seq2seq_problems
from pixiu.tracking import MirroredLog, Tracker, check_tracker, open_tracker, report_metrics
from pixiu.vocab import new_token_ids

LOCK_FILE = ".pixiu.lock"
"""Held (fcntl) by the training writing into a run folder."""


@dataclass
class RunSummary:
    """What a finished run produced."""

    run_dir: Path
    steps: int
    train_tokens_per_second: float
    metrics: dict


@dataclass(frozen=True)
class Hardware:
    """Where a run computes: the device, the frozen base's dtype, and the gradient scaler (enabled for fp16)."""

    device: torch.device
    dtype: torch.dtype
    scaler: torch.amp.GradScaler


@contextlib.contextmanager
def run_folder(run_dir: Path) -> Iterator[Path]:
    """Hold `run_dir`'s lock while a training writes into it; a second training into it is refused.

    A folder found empty is removed again when the run fails before writing anything into it.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    was_empty = not any(run_dir.iterdir())
    try:
        with locked(run_dir / LOCK_FILE, blocking=False):
            try:
                yield run_dir
            finally:
                if was_empty and {p.name for p in run_dir.iterdir()} == {LOCK_FILE}:
                    shutil.rmtree(run_dir)
    except BlockingIOError:
        raise PixiuError(
            f"another training is writing into {run_dir} (it holds {run_dir / LOCK_FILE}); "
            "wait for it to finish, or pass another --output"
        ) from None


def run_on_ranks(
    run_dir: Path, config: RunConfig, console: Console | None, body: Callable[..., RunSummary]
) -> RunSummary:
    """Join the run's processes and call `body(folder, console=, ranks=)`: rank 0 (or the only process) locks the
    run folder and writes every file; the other ranks only train, quietly, into the same folder."""
    ranks = Ranks.start(config.train.device, config.train.strategy)
    if not ranks.is_main:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        return body(Path(run_dir), console=Console(quiet=True), ranks=ranks)
    with run_folder(run_dir) as folder:
        return body(folder, console=console or Console(stderr=True), ranks=ranks)


def rank_done(run_dir: Path, config: RunConfig, tokens_per_second: float) -> RunSummary:
    """What a rank other than 0 returns once training ends: rank 0 saves, evaluates and registers for all."""
    return RunSummary(run_dir, config.train.max_steps, tokens_per_second, {})


@dataclass(frozen=True)
class RunStart:
    """What a recipe settles before loading anything: its checkpoints, its hardware, the adapter it starts from."""

    checkpoints: list[Path]
    hardware: Hardware
    init_folder: Path | None


def start_run(config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, ranks: Ranks) -> RunStart:
    """Check everything that can fail cheaply (checkpoints against --resume, the record a resume must match,
    device, precision, quantisation, train.init_adapter), so that nothing heavy loads for a run that cannot go."""
    torch.set_num_threads(config.train.threads or ranks.cpu_threads())
    check_tracker(config.train.report_to)
    checkpoints = list_checkpoints(run_dir)
    check_resumable(checkpoints, run_dir, resume=resume)
    if resume:
        check_matches_record(run_dir, config, data_path)
    start = RunStart(checkpoints, training_setup(config, ranks), init_adapter_folder(config))
    check_family_trains(config)
    return start


def check_family_trains(config: RunConfig) -> None:
    """Refuse, from the base's config alone, a train.method or lora.method its family cannot train with (an
    encoder-decoder base trains sft only, `pixiu.seq2seq`); a base whose config cannot be read here is left to
    `load_base` to explain, and a .gguf file is not hashed a second time for it."""
    if config.base.endswith(".gguf"):
        return
    try:
        family = base_config(config.base)
    except (OSError, PixiuError):
        return
    if is_encoder_decoder(family):
        problems = seq2seq_problems(family.model_type, objective=config.train.method, method=config.lora.method)
        if problems:
            raise ConfigError(problems)


def read_example_split(
    data_path: Path, domain: Domain, config: RunConfig, run_dir: Path, console: Console, *, resume: bool, writes: bool
) -> Split[Example]:
    """Format a run's records and hold out `data.eval_records` of them; with `writes` (the rank that writes), bad
    records go to rejects.jsonl and a new run saves its held-out split, which a resumed run keeps."""
    rejects = rejects_file(run_dir, writes)
    loaded = load_examples(
        data_path, formatter_for(domain, config), on_bad_record=config.data.on_bad_record, rejects_path=rejects
    )
    if loaded.rejected:
        console.print(f"[yellow]{loaded.rejected} bad records skipped; see {rejects}[/]")
    train, held_out = split_examples(loaded.items, config.data.eval_records, config.train.seed)
    if note := held_out_note(len(loaded.items), config.data.eval_records):
        console.print(f"[yellow]{note}[/]")
    if config.data.max_records:
        train = train[: config.data.max_records]
    if not train:
        raise PixiuError(f"{data_path}: every record was held out for evaluation; lower data.eval_records")
    if not resume and writes:
        write_split(run_dir / EVAL_SPLIT_FILE, held_out)
    return Split(train, held_out, loaded.rejected)


def load_training_base(config: RunConfig, hardware: Hardware, console: Console) -> tuple[Any, Any]:
    """The frozen base (on the run's device, in its dtype or quantised) readied for LoRA training, and its tokenizer."""
    console.print(
        f"loading base model [bold]{config.base}[/] on {hardware.device} in "
        f"{config.lora.quantize or precision_name(hardware.dtype)}"
    )
    source = resolve_base(config.base)  # resolved once: a .gguf is hashed to find its conversion
    with contextlib.suppress(OSError):  # an unreachable hub id: load_base explains that below
        if refusal := method_refusal(AutoConfig.from_pretrained(source), config.lora.method):
            raise PixiuError(refusal)  # before the weights load
    base, tokenizer = load_base(source, dtype=hardware.dtype, device=hardware.device, quantize=config.lora.quantize)
    return prepare_base(base, config), tokenizer


def check_resumable(checkpoints: list[Path], run_dir: Path, *, resume: bool) -> None:
    """Refuse to start over a folder holding checkpoints, or to resume one that has none."""
    if checkpoints and not resume:
        raise PixiuError(f"{run_dir} already holds checkpoints; pass --resume to continue it, or a new --output")
    if resume and not checkpoints:
        raise PixiuError(f"nothing to resume in {run_dir}: it has no checkpoint yet. Start it without --resume.")


def training_setup(config: RunConfig, ranks: Ranks) -> Hardware:
    """Resolve and check `train.device`, `train.precision` and `lora.quantize`; raises PixiuError before loading.

    Under a launcher the device is the rank's own (accelerate's cuda:LOCAL_RANK, or the CPU)."""
    device = ranks.device or resolve_device(config.train.device)
    dtype = resolve_precision(config.train.precision, device)
    if config.lora.quantize:
        check_quantize(config.lora.quantize, device)
    # fp16's narrow range underflows small gradients without loss scaling; bf16 and fp32 need none
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    return Hardware(device, dtype, scaler)


def init_adapter_folder(config: RunConfig) -> Path | None:
    """The folder of `train.init_adapter`, checked to suit `config.base` before anything loads; None without one."""
    if config.train.init_adapter is None:
        return None
    folder = resolve_adapter(config.train.init_adapter)
    recorded = read_run_file(folder).get("base_model")
    if recorded and recorded != config.base:
        raise PixiuError(
            f"train.init_adapter {folder} was trained on the base {recorded}, not on {config.base}; "
            f"pass --base {recorded}, or start from a fresh adapter"
        )
    return folder


def trainable_adapter(base, config: RunConfig, init_folder: Path | None) -> PeftModel:
    """A fresh LoRA adapter on `base` (initialised from `train.seed`), or the adapter in `init_folder` to train on;
    its plain LoRA layers train through `pixiu.fused_lora`."""
    model = load_trainable_adapter(base, init_folder) if init_folder is not None else _new_adapter(base, config)
    fuse_lora_layers(model)
    return model


def _new_adapter(base, config: RunConfig) -> PeftModel:
    """A fresh adapter of `config.lora.method` on `base`, initialised from `train.seed`."""
    torch.manual_seed(config.train.seed)
    lora = config.lora
    new_tokens = new_token_ids(base.name_or_path)  # a base from `pixiu models extend-vocab` trains its new rows
    if new_tokens and lora.method != "lora":
        raise PixiuError(
            f"{config.base} has {len(new_tokens)} tokens added by `pixiu models extend-vocab`, whose embedding rows "
            f"train only with lora.method=lora, not {lora.method}; train with lora.method=lora or on the base it "
            "was extended from"
        )
    if lora.method != "lora":
        return attach_method(base, lora, config.train.max_steps)
    return attach_lora(
        base,
        r=lora.r,
        alpha=lora.alpha,
        dropout=lora.dropout,
        target_modules=lora.target_modules,
        new_token_ids=new_tokens,
    )


def prepare_base(base, config: RunConfig):
    """Ready the frozen base for LoRA training: peft's k-bit preparation when quantised, and checkpointing."""
    if config.lora.quantize:
        base = prepare_quantized(base)
    if config.train.gradient_checkpointing:
        enable_gradient_checkpointing(base, config.train.recompute_every)
    return base


class Optimiser:
    """AdamW over the adapter's trainable weights, its learning-rate schedule and the fp16 gradient scaler:
    stepped, saved and restored together."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: RunConfig,
        scaler: torch.amp.GradScaler,
        extra: Iterable[torch.nn.Parameter] = (),
        updates_per_step: int = 1,
        ranks: Ranks | None = None,
    ):
        # `extra`: weights trained beside the adapter that live outside `model` (a reward or value head);
        # `updates_per_step`: optimiser steps per training step (ppo's epochs), so the schedule spans the run;
        # `ranks`: the processes whose gradients `step` adds up (sft syncs through accelerate's wrapper instead)
        self.ranks = ranks or Ranks()
        self.model = model
        self.trainable = [p for p in model.parameters() if p.requires_grad] + list(extra)
        self.optimizer: torch.optim.Optimizer
        if config.lora.method != "loraplus":
            self.optimizer = torch.optim.AdamW(
                self.trainable, lr=config.train.lr, weight_decay=config.train.weight_decay
            )
        else:  # peft's LoRA+ groups: B matrices at lr x loraplus_lr_ratio
            self.optimizer = create_loraplus_optimizer(
                model,  # type: ignore[arg-type]  # a PeftModel whenever lora.method is loraplus
                torch.optim.AdamW,
                lr=config.train.lr,
                loraplus_lr_ratio=config.lora.loraplus_lr_ratio,
                weight_decay=config.train.weight_decay,
            )
            if extra:
                self.optimizer.add_param_group({"params": list(extra), "lr": config.train.lr})
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lr_schedule(config.train.warmup_steps * updates_per_step, config.train.max_steps * updates_per_step),
        )
        self.scaler = scaler

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step: backward, add the gradients up over the ranks, clip the true gradients to norm 1,
        step, schedule. Under several ranks `loss` is this rank's part of the step's loss."""
        self.scaler.scale(loss).backward()
        self.ranks.sum_gradients(self.trainable)
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
        torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def lr(self) -> float:
        """The learning rate of the next step."""
        return float(self.scheduler.get_last_lr()[0])

    def state_dict(self, optimizer_state: dict | Literal["own"] | None = "own") -> dict:
        """The training state a checkpoint keeps beside the adapter; `optimizer_state` as the ranks give it, else
        the optimizer's own."""
        return {
            "optimizer": self.optimizer.state_dict() if optimizer_state == "own" else optimizer_state,
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            **method_state(self.model),
        }

    def load_state_dict(self, state: dict, console: Console) -> None:
        """Restore what `state_dict` saved (the optimizer's state is loaded onto the parameters' device)."""
        if state["optimizer"] is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        else:  # written under DeepSpeed, whose ZeRO partitions pixiu does not gather (see pixiu.distributed)
            console.print("[yellow]the checkpoint has no optimizer state (written under DeepSpeed); AdamW restarts[/]")
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_method_state(self.model, state)


def checkpoint_weights(model: PeftModel, extra: Mapping[str, torch.nn.Module] | None = None) -> dict[str, torch.Tensor]:
    """The adapter's weights for `save_checkpoint`, with each `extra` module's under the keys `NAME.*`."""
    weights = adapter_state(model)
    for name, module in (extra or {}).items():
        weights.update({f"{name}.{k}": v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()})
    return weights


def save_training_checkpoint(
    run_dir: Path,
    steps: int,
    model: PeftModel,
    optimiser: Optimiser,
    config: RunConfig,
    extra: Mapping[str, torch.nn.Module] | None = None,
) -> None:
    """Checkpoint the run after `steps` steps: the adapter (with each `extra` module, as `checkpoint_weights`
    keeps them) and the training state, keeping the newest `train.keep_checkpoints`. (sft saves through its
    `Ranks`, which gather a sharded adapter first.)"""
    weights = checkpoint_weights(model, extra)
    save_checkpoint(run_dir, steps, weights, optimiser.state_dict(), keep=config.train.keep_checkpoints)


def resume_training(
    checkpoints: list[Path],
    model: PeftModel,
    optimiser: Optimiser,
    console: Console,
    extra: Mapping[str, torch.nn.Module] | None = None,
) -> int:
    """Put the newest readable checkpoint's adapter (and `extra` modules, saved by `checkpoint_weights`) and
    training state back; returns the steps it had done."""
    adapter, state = load_newest_readable(checkpoints, console)
    for name, module in (extra or {}).items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: adapter.pop(k) for k in list(adapter) if k.startswith(prefix)})
    restore_adapter_state(model, adapter)
    optimiser.load_state_dict(state, console)
    console.print(f"resuming {checkpoints[0].parent.parent} at step {state['step']}")
    return state["step"]


def load_newest_readable(checkpoints: list[Path], console: Console) -> tuple[dict, dict]:
    """Load the newest checkpoint that reads cleanly, saying which ones were unreadable and skipped."""
    for newer, path in enumerate(reversed(checkpoints)):
        try:
            loaded = load_checkpoint(path)
        except Exception as exc:  # a torn or corrupted file: the older checkpoint kept is the way back
            console.print(
                f"[yellow]checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); trying the older one kept[/]"
            )
            continue
        if newer:
            console.print(f"[yellow]resuming from the older checkpoint {path}[/]")
        return loaded
    raise PixiuError(
        f"every checkpoint in {checkpoints[0].parent} is unreadable; start the run again with a new --output"
    )


def lr_schedule(warmup: int, total: int) -> Callable[[int], float]:
    """Linear warm-up to 1, then cosine decay to 0.1 of the peak learning rate."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def open_log(path: Path, keep_through: int, *, writes: bool = True, tracker: Tracker | None = None) -> IO[str]:
    """Open the per-step log for appending, first dropping steps after `keep_through` (redone on resume); a rank
    that does not write (`writes` false) logs its identical rows nowhere. With a `tracker`, each row written is
    also sent to it (closing the log closes it)."""
    if not writes:
        return open(os.devnull, "w")
    if tracker is not None:
        return cast(IO[str], MirroredLog(open_log(path, keep_through), tracker))  # a text stream the recipes write
    if path.exists():
        rows = [
            line
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["step"] <= keep_through
        ]
        atomic_write_text(path, "".join(row + "\n" for row in rows))
    return path.open("a", encoding="utf-8")


def run_tracker(run_dir: Path, domain: Domain, config: RunConfig, ranks: Ranks) -> Tracker | None:
    """The tracker `train.report_to` names for this run, on rank 0; None on the other ranks or without one."""
    if not ranks.is_main:
        return None
    return open_tracker(config.train.report_to, run_dir, project=f"pixiu-{domain.name}", config=to_dict(config))


class StepLog:
    """A recipe's per-step record: a row of train_log.jsonl for each step (the step's figures, then its tokens,
    seconds, learning rate and data position), the progress bar, and the training speed so far."""

    def __init__(self, log: IO[str], progress: TrainProgress, batches: StepBatches, optimiser: Optimiser):
        self.log, self.progress, self.batches, self.optimiser = log, progress, batches, optimiser
        self.tokens, self.seconds = 0.0, 0.0

    def write(self, step: int, began: float, tokens: float, **figures: Any) -> dict[str, Any]:
        """Log step `step` (from 0; begun at `time.perf_counter()` `began`, `tokens` trained) with its `figures`,
        its loss first, flushed so that a killed run's log holds every finished step; moves the progress bar."""
        seconds = time.perf_counter() - began
        self.tokens, self.seconds = self.tokens + tokens, self.seconds + seconds
        epoch, index = self.batches.position(step)
        row = {
            "step": step + 1,
            **figures,
            "tokens": tokens,
            "seconds": seconds,
            "lr": self.optimiser.lr(),
            "epoch": epoch,
            "batch": index,
        }
        self.log.write(json.dumps(row) + "\n")
        self.log.flush()
        self.progress.update(step + 1, loss=figures["loss"], tokens_per_second=self.tokens_per_second)
        return row

    @property
    def tokens_per_second(self) -> float:
        """Trained tokens per second of training so far (0 before the first step)."""
        return self.tokens / self.seconds if self.seconds else 0.0


class TimeBudget:
    """`train.max_minutes` from now: whether it is spent, agreed by every rank so that all stop after one step."""

    def __init__(self, minutes: float | None, ranks: Ranks):
        self.ends = None if minutes is None else time.perf_counter() + 60 * minutes
        self.ranks = ranks

    def reached(self) -> bool:
        """Whether any rank's clock has passed the budget (always False without one)."""
        if self.ends is None:
            return False
        return self.ranks.sum(float(time.perf_counter() >= self.ends))[0] > 0


def checkpoint_due(steps_done: int, config: RunConfig) -> bool:
    """Whether a checkpoint is written after `steps_done` steps: every `train.save_every` steps, and at the end."""
    return steps_done % config.train.save_every == 0 or steps_done == config.train.max_steps


def finish_run(
    run_dir: Path,
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    tokenizer,
    metrics: dict,
    *,
    adapter_name: str,
    tokens_per_second: float,
) -> RunSummary:
    """Write metrics.json and the finished run record, register the adapter as `adapter_name`, write the run's
    report.html, and sum the run up."""
    atomic_write_json(run_dir / METRICS_FILE, metrics)
    report_metrics(
        config.train.report_to, run_dir, project=f"pixiu-{domain.name}", config=to_dict(config), metrics=metrics
    )
    write_run_file(run_dir, domain, config, data_path, tokenizer, status="finished")
    register_adapter(adapter_name, domain.name, run_dir, config.base, metrics)
    write_report(run_dir)
    return RunSummary(run_dir, config.train.max_steps, tokens_per_second, metrics)


def last_loss(path: Path) -> float | None:
    """The loss of the last logged step."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return round(json.loads(lines[-1])["loss"], 4) if lines else None


def run_figures(config: RunConfig, hardware: Hardware, run_dir: Path, tokens_per_second: float, memory: dict) -> dict:
    """The `train` figures every recipe's metrics.json records: steps, last loss, speed, hardware, peak memory."""
    return {
        "method": config.train.method,
        "steps": config.train.max_steps,
        "final_loss": last_loss(run_dir / LOG_FILE),
        "tokens_per_second": round(tokens_per_second, 1),
        "device": str(hardware.device),
        "precision": precision_name(hardware.dtype),
        "quantize": config.lora.quantize,
        "gradient_checkpointing": config.train.gradient_checkpointing,
        "recompute_every": config.train.recompute_every,
        "init_adapter": config.train.init_adapter,
        "peak_memory": memory,
    }


def write_run_file(run_dir: Path, domain: Domain, config: RunConfig, data_path: Path, tokenizer, status: str) -> None:
    """Write `pixiu_run.yaml`: everything needed to understand or repeat the run."""
    record = {
        "status": status,
        "domain": domain.name,
        "plugin_version": domain.version,
        "pixiu_version": __version__,
        "base_model": config.base,
        "data": str(Path(data_path).resolve()),
        "prompt_template": tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE,
        "config": to_dict(config),
    }
    atomic_write_text(run_dir / RUN_FILE, yaml.safe_dump(record, allow_unicode=True, sort_keys=False))
