"""A reward model of one domain, read top to bottom: setup -> train -> save -> evaluate -> register.

A LoRA adapter on the base and a scalar head (`pixiu.reward_model`) learn from preference pairs, the same data
as `--method dpo`, to score the chosen answer above the rejected one: Bradley-Terry's -log sigmoid of the score
difference. A step is a length-grouped batch of pairs, each pair two rows; the head reads each row's last answer
token and no vocabulary projection runs. Killed at any point, a run resumes from its newest checkpoint (adapter
and head) with `resume=True` and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from peft import PeftModel
from rich.console import Console

from pixiu.config import RunConfig
from pixiu.data import StepBatches
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain
from pixiu.plots import plot_loss_curve
from pixiu.preference import (
    TokenizedPair,
    collate_pairs,
    read_pair_split,
    tokenize_split,
)
from pixiu.progress import TrainProgress
from pixiu.recipes.dpo import ranking
from pixiu.reward_model import HEAD_KEY, build_head, pair_loss, save_head, score_rows
from pixiu.runs import LOG_FILE, LOSS_PLOT_FILE
from pixiu.training import (
    Optimiser,
    RunSummary,
    StepLog,
    checkpoint_due,
    finish_run,
    load_training_base,
    open_log,
    rank_done,
    resume_training,
    run_figures,
    run_on_ranks,
    run_tracker,
    save_training_checkpoint,
    start_run,
    trainable_adapter,
    write_run_file,
)

ADAPTER_SUFFIX = "-rm"
"""A reward model registers as DOMAIN-rm, beside the domain's SFT adapter."""


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a reward model (LoRA adapter and scalar head) for `domain` on the preference pairs of `data_path`
    into `run_dir`, evaluate its pairwise accuracy on held-out pairs, and register it as DOMAIN-rm."""
    return run_on_ranks(run_dir, config, console, partial(_run, domain, config, data_path, resume=resume))


def _run(
    domain: Domain, config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, console: Console, ranks: Ranks
):
    """`run`, in the run folder (locked by rank 0)."""
    start = start_run(config, data_path, run_dir, resume=resume, ranks=ranks)  # nothing loaded for a run that cannot go
    checkpoints, hardware, init_folder = start.checkpoints, start.hardware, start.init_folder

    # --- data ---------------------------------------------------------------------------------------------
    split = read_pair_split(data_path, domain, config, run_dir, console, resume=resume, writes=ranks.is_main)

    # --- model --------------------------------------------------------------------------------------------
    base, tokenizer = load_training_base(config, hardware, console)
    pairs = tokenize_split(tokenizer, split, config, run_dir, console, writes=ranks.is_main)
    tokenized, held_out = pairs.train, pairs.held_out
    model = trainable_adapter(base, config, init_folder)
    head = build_head(base.config.hidden_size, config.train.seed, hardware.device)
    optimiser = Optimiser(model, config, hardware.scaler, ranks=ranks, extra=head.parameters())
    start_step = resume_training(checkpoints, model, optimiser, console, extra={HEAD_KEY: head}) if resume else 0
    if ranks.is_main:
        write_run_file(run_dir, domain, config, data_path, tokenizer, status="training")

    # --- train --------------------------------------------------------------------------------------------
    batches = StepBatches(tokenized, config.train.batch_tokens, config.train.seed)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tracker = run_tracker(run_dir, domain, config, ranks)
    log = open_log(run_dir / LOG_FILE, keep_through=start_step, writes=ranks.is_main, tracker=tracker)
    model.train()
    reset_peak_memory(hardware.device)
    with TrainProgress(console, total=config.train.max_steps, start=start_step) as progress:
        step_log = StepLog(log, progress, batches, optimiser)
        for step in range(start_step, config.train.max_steps):
            began = time.perf_counter()
            indices = batches.for_step(step)
            share = ranks.rows(tokenized, indices)  # this rank's pairs; the whole batch when alone
            batch = {k: v.to(hardware.device) for k, v in collate_pairs(tokenized, share.rows, pad_id).items()}
            loss, margins = pair_loss(score_rows(model, head, batch))
            optimiser.step(loss * share.part(len(share.rows), len(indices)))
            figures = ranks.step_means(
                share, len(indices), loss=loss.item() * len(share.rows), right=(margins > 0).sum(), margin=margins.sum()
            )
            loss_value = figures["loss"]
            tokens = sum(len(tokenized[i].chosen) + len(tokenized[i].rejected) for i in indices)
            step_log.write(
                step,
                began,
                tokens,
                loss=loss_value,
                accuracy=figures["right"],
                margin=figures["margin"],
                pairs=len(indices),
            )
            if checkpoint_due(step + 1, config) and ranks.is_main:
                save_training_checkpoint(run_dir, step + 1, model, optimiser, config, {HEAD_KEY: head})
                progress.note(f"checkpoint saved: step {step + 1}")
    log.close()
    memory = peak_memory(hardware.device)
    if not ranks.is_main:  # rank 0 saves, evaluates and registers for all
        return rank_done(run_dir, config, step_log.tokens_per_second)

    # --- save ---------------------------------------------------------------------------------------------
    model.save_pretrained(str(run_dir))
    save_head(head, run_dir)
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} reward model on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "pairs": len(tokenized),
            "rejected_records": pairs.rejected,
        }
    }
    if held_out:
        console.print(f"scoring {len(held_out)} held-out pairs with the reward model")
        scores = held_out_scores(model, head, held_out, config.train.batch_tokens, pad_id)
        metrics.update(records=len(held_out), adapter=scores)

    # --- register -----------------------------------------------------------------------------------------
    return finish_run(
        run_dir,
        domain,
        config,
        data_path,
        tokenizer,
        metrics,
        adapter_name=domain.name + ADAPTER_SUFFIX,
        tokens_per_second=speed,
    )


@torch.no_grad()
def held_out_scores(
    model: PeftModel, head: torch.nn.Linear, pairs: Sequence[TokenizedPair], batch_tokens: int, pad_id: int
) -> dict[str, float]:
    """How the reward model ranks held-out pairs: the mean chosen-minus-rejected score (`margin`) and the share
    of pairs it scores the chosen answer higher (`accuracy`, %)."""
    model.eval()
    device = head.weight.device
    margins = []
    for indices in StepBatches(pairs, batch_tokens, seed=0).batches_in_epoch(0):
        batch = {k: v.to(device) for k, v in collate_pairs(pairs, indices, pad_id).items()}
        margins.append(pair_loss(score_rows(model, head, batch))[1].cpu())
    return ranking(torch.cat(margins))
