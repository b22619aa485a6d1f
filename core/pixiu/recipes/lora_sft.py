"""LoRA supervised fine-tuning of one domain, read top to bottom: setup -> train -> save -> evaluate -> register.

Killed at any point, a run resumes from its newest checkpoint with `resume=True` and ends exactly where an
uninterrupted run would: same steps, same batches, same weights.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from rich.console import Console

from pixiu.checkpoint import save_checkpoint
from pixiu.config import RunConfig
from pixiu.data import StepBatches, cut_answers_note
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain
from pixiu.errors import PixiuError
from pixiu.evaluation import evaluate
from pixiu.general import run_probe
from pixiu.lora import adapter_state
from pixiu.loss import labelled_loss
from pixiu.methods import SHARDABLE, allocate_ranks, eval_variants, keep_initial_adapter, save_tuned
from pixiu.plots import plot_loss_curve
from pixiu.progress import TrainProgress
from pixiu.runs import GENERAL_PREDICTIONS_FILE, LOG_FILE, LOSS_PLOT_FILE, PREDICTIONS_FILE
from pixiu.seq2seq import example_codec
from pixiu.training import (
    Optimiser,
    RunSummary,
    StepLog,
    TimeBudget,
    checkpoint_due,
    finish_run,
    load_training_base,
    open_log,
    rank_done,
    read_example_split,
    resume_training,
    run_figures,
    run_on_ranks,
    run_tracker,
    start_run,
    trainable_adapter,
    write_run_file,
)

ADAPTER_SUFFIX = ""
"""An SFT adapter registers under its domain's own name."""


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a LoRA adapter for `domain` on `data_path` into `run_dir`, evaluate it and register it.

    One training at a time may write into a run folder: a second one is refused while the first holds its lock.
    A folder this call found empty is removed again when the run fails before writing anything into it.
    """
    return run_on_ranks(run_dir, config, console, partial(_run, domain, config, data_path, resume=resume))


def _run(
    domain: Domain, config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, console: Console, ranks: Ranks
) -> RunSummary:
    """`run`, in the run folder (locked by rank 0)."""
    start = start_run(config, data_path, run_dir, resume=resume, ranks=ranks)  # nothing loaded for a run that cannot go
    checkpoints, hardware, init_folder = start.checkpoints, start.hardware, start.init_folder

    # --- data ---------------------------------------------------------------------------------------------
    split = read_example_split(data_path, domain, config, run_dir, console, resume=resume, writes=ranks.is_main)
    train_examples, eval_examples = split.train, split.held_out

    # --- model --------------------------------------------------------------------------------------------
    base, tokenizer = load_training_base(config, hardware, console)
    tokenize, collate = example_codec(base)  # an encoder-decoder base (T5) reads the prompt and writes the answer
    tokenized = [tokenize(tokenizer, e.messages, config.data.max_seq_len) for e in train_examples]
    if note := cut_answers_note(train_examples, tokenized, config.data.max_seq_len):
        console.print(f"[yellow]{note}[/]")
    tokenized = [t for t in tokenized if any(label >= 0 for label in t.labels)]
    if not tokenized:
        raise PixiuError(f"no example keeps any answer token within data.max_seq_len={config.data.max_seq_len}")
    model = trainable_adapter(base, config, init_folder)
    optimiser = Optimiser(model, config, hardware.scaler)
    start_step = resume_training(checkpoints, model, optimiser, console) if resume else 0
    if resume and ranks.restarts_optimizer:
        console.print(
            f"[yellow]train.strategy={config.train.strategy}: DeepSpeed's ZeRO partitions keep AdamW's state, which "
            "pixiu's checkpoints do not hold; AdamW restarts from zero (the adapter, learning-rate schedule and data "
            "position resume exactly); train with fsdp or ddp for an exact resume[/]"
        )
    if ranks.is_main:
        keep_initial_adapter(model, run_dir, config.lora.method)  # pissa/olora: what the saved adapter converts against
        write_run_file(run_dir, domain, config, data_path, tokenizer, status="training")

    # --- train --------------------------------------------------------------------------------------------
    batches = StepBatches(tokenized, config.train.batch_tokens, config.train.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tracker = run_tracker(run_dir, domain, config, ranks)
    log = open_log(run_dir / LOG_FILE, keep_through=start_step, writes=ranks.is_main, tracker=tracker)
    step_loss, optimizer = ranks.prepare(model, optimiser.optimizer, labelled_loss)
    model.train()
    reset_peak_memory(hardware.device)
    deadline = TimeBudget(config.train.max_minutes, ranks)
    steps_done = config.train.max_steps
    with TrainProgress(console, total=config.train.max_steps, start=start_step) as progress:
        step_log = StepLog(log, progress, batches, optimiser)
        for step in range(start_step, config.train.max_steps):
            began = time.perf_counter()
            indices = batches.for_step(step)
            share = ranks.share(tokenized, indices)  # this rank's rows; the whole batch when alone
            batch = {k: v.to(hardware.device) for k, v in collate(tokenized, share.rows, pad_id).items()}
            loss_sum = step_loss(batch)
            ranks.backward(hardware.scaler.scale(loss_sum * share.weight))
            hardware.scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
            ranks.clip(optimiser.trainable, 1.0)
            hardware.scaler.step(optimizer)  # skipped when fp16 gradients overflowed
            hardware.scaler.update()
            optimiser.scheduler.step()
            allocate_ranks(model, step)  # AdaLoRA only: before the gradients it reads are zeroed
            optimizer.zero_grad(set_to_none=True)
            loss = ranks.step_loss(loss_sum, share)  # reading it waits for the GPU: the step's time includes its work
            tokens = sum(len(tokenized[i]) for i in indices)
            step_log.write(step, began, tokens, loss=loss)
            out_of_time = deadline.reached()
            if checkpoint_due(step + 1, config) or out_of_time:
                saved = ranks.adapter_state(model, adapter_state)  # None on the ranks that do not write
                optimizer_state = ranks.optimizer_state(optimizer)  # gathered from every rank under fsdp
                if saved is not None:
                    training_state = optimiser.state_dict(optimizer_state)
                    save_checkpoint(run_dir, step + 1, saved, training_state, keep=config.train.keep_checkpoints)
                    progress.note(f"checkpoint saved: step {step + 1}")
            if out_of_time:
                steps_done = step + 1
                progress.note(f"train.max_minutes={config.train.max_minutes} reached: stopped after step {steps_done}")
                break
    log.close()
    memory = peak_memory(hardware.device)  # before evaluation, whose generation is not training memory
    if not ranks.is_main:  # another rank's work ends with training: rank 0 saves, evaluates and registers
        return rank_done(run_dir, config, step_log.tokens_per_second)

    # --- save ---------------------------------------------------------------------------------------------
    if config.lora.method in ("lora", *SHARDABLE):
        ranks.save_adapter(model, run_dir)
    else:
        save_tuned(model, run_dir, tokenizer, config.lora.method)
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} LoRA on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "steps": steps_done,
            "examples": len(tokenized),
            "rejected_records": split.rejected,
        }
    }
    if eval_examples and not ranks.can_evaluate:
        console.print(
            f"[yellow]train.strategy={config.train.strategy} shards the weights, so rank 0 cannot generate alone; "
            f"evaluate with: pixiu domain eval {domain.name} --adapter {run_dir}[/]"
        )
    elif eval_examples:
        result = evaluate(
            model,
            tokenizer,
            domain,
            eval_examples,
            config.eval,
            max_prompt_tokens=config.data.max_seq_len,
            variants=eval_variants(config.lora.method),
            predictions_path=run_dir / PREDICTIONS_FILE,
        )
        metrics.update(records=result.records, **result.scores)
        if config.eval.general:  # the forgetting probe, beside the domain's scores
            metrics["general"] = run_probe(
                model,
                tokenizer,
                config.eval,
                max_len=config.data.max_seq_len,
                predictions_path=run_dir / GENERAL_PREDICTIONS_FILE,
            )

    # --- register -----------------------------------------------------------------------------------------
    return finish_run(
        run_dir, domain, config, data_path, tokenizer, metrics, adapter_name=domain.name, tokens_per_second=speed
    )
