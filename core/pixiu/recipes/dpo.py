"""LoRA preference optimisation (DPO, IPO, SimPO, RRHF) of one domain, read top to bottom: setup -> train -> save ->
evaluate -> register.

The reference model is the base itself with the adapter switched off, so one copy of the base is in memory (as trl
does with peft); a run started from an adapter (`train.init_adapter`, an SFT adapter as in the DPO paper) keeps a
frozen copy of it as the reference instead. A step is a length-grouped batch of pairs, each pair two rows (chosen,
rejected) after the same prompt; the output head runs on answer tokens only. Killed at any point, a run resumes from
its newest checkpoint with `resume=True` and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from rich.console import Console

from pixiu.config import RunConfig
from pixiu.data import StepBatches
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain
from pixiu.lora import attach_reference, has_reference, reference_active
from pixiu.loss import answer_logprobs
from pixiu.plots import plot_loss_curve
from pixiu.preference import (
    TokenizedPair,
    collate_pairs,
    read_pair_split,
    tokenize_split,
)
from pixiu.preference_loss import NEEDS_REFERENCE, PairLogprobs, preference_loss
from pixiu.progress import TrainProgress
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

ADAPTER_SUFFIX = "-dpo"
"""A preference adapter registers as DOMAIN-dpo, beside the domain's SFT adapter."""


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a LoRA adapter for `domain` on the preference pairs of `data_path` into `run_dir`, evaluate the
    log-prob margins on held-out pairs against the base, and register it as DOMAIN-dpo."""
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
    attach_reference(model, init_folder)  # the reference: the start adapter, else the base
    optimiser = Optimiser(model, config, hardware.scaler, ranks=ranks)
    start_step = resume_training(checkpoints, model, optimiser, console) if resume else 0
    if ranks.is_main:
        write_run_file(run_dir, domain, config, data_path, tokenizer, status="training")

    # --- train --------------------------------------------------------------------------------------------
    dpo, beta = config.dpo, config.dpo.strength()
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
            reference = _reference_logprobs(model, batch) if NEEDS_REFERENCE[dpo.loss] else None
            result = preference_loss(dpo.loss, beta, _logprobs(model, batch), reference, simpo_gamma=dpo.simpo_gamma)
            optimiser.step(result.losses.mean() * share.part(len(share.rows), len(indices)))
            margins = result.chosen_rewards - result.rejected_rewards
            figures = ranks.step_means(
                share,
                len(indices),
                loss=result.losses.sum(),
                right=(margins > 0).sum(),
                margin=margins.sum(),
                chosen=result.chosen_rewards.sum(),
                rejected=result.rejected_rewards.sum(),
            )
            loss_value = figures["loss"]
            tokens = sum(len(tokenized[i].chosen) + len(tokenized[i].rejected) for i in indices)
            step_log.write(
                step,
                began,
                tokens,
                loss=loss_value,
                reward_accuracy=figures["right"],
                reward_margin=figures["margin"],
                chosen_reward=figures["chosen"],
                rejected_reward=figures["rejected"],
                pairs=len(indices),
            )
            if checkpoint_due(step + 1, config) and ranks.is_main:
                save_training_checkpoint(run_dir, step + 1, model, optimiser, config)
                progress.note(f"checkpoint saved: step {step + 1}")
    log.close()
    memory = peak_memory(hardware.device)
    if not ranks.is_main:  # rank 0 saves, evaluates and registers for all
        return rank_done(run_dir, config, step_log.tokens_per_second)

    # --- save ---------------------------------------------------------------------------------------------
    model.save_pretrained(str(run_dir), selected_adapters=["default"])  # the trained adapter, not the reference
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} {dpo.loss} on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "loss": dpo.loss,
            "beta": beta,
            "pairs": len(tokenized),
            "rejected_records": pairs.rejected,
        }
    }
    if held_out:
        console.print(f"scoring {len(held_out)} held-out pairs with the base and the adapter")
        metrics.update(records=len(held_out), **pair_scores(model, held_out, config.train.batch_tokens, pad_id, beta))

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
def pair_scores(
    model, pairs: Sequence[TokenizedPair], batch_tokens: int, pad_id: int, beta: float
) -> dict[str, dict[str, float]]:
    """How the base and the adapter rank held-out pairs: the mean chosen-minus-rejected answer log-prob
    (`margin`), the share of pairs where the chosen answer is the likelier one (`accuracy`, %), and for the
    adapter DPO's implicit reward against its reference, the base or the start adapter (`reward_margin`,
    `reward_accuracy` %)."""
    model.eval()
    device = next(model.parameters()).device
    margins: dict[str, list[torch.Tensor]] = {"base": [], "adapter": [], "reference": []}
    for indices in StepBatches(pairs, batch_tokens, seed=0).batches_in_epoch(0):
        batch = {k: v.to(device) for k, v in collate_pairs(pairs, indices, pad_id).items()}
        variants = {"base": _base_logprobs(model, batch), "adapter": _logprobs(model, batch)}
        variants["reference"] = _reference_logprobs(model, batch) if has_reference(model) else variants["base"]
        for variant, logprobs in variants.items():
            margins[variant].append((logprobs.chosen - logprobs.rejected).float().cpu())
    base, adapter = torch.cat(margins["base"]), torch.cat(margins["adapter"])
    rewards = beta * (adapter - torch.cat(margins["reference"]))  # DPO's implicit reward, against its reference
    scores = {name: ranking(values) for name, values in (("base", base), ("adapter", adapter))}
    scores["adapter"].update(
        reward_margin=round(rewards.mean().item(), 4),
        reward_accuracy=round(100 * (rewards > 0).float().mean().item(), 2),
    )
    return scores


def ranking(margins: torch.Tensor) -> dict[str, float]:
    """The mean margin (chosen minus rejected) and the share (%) of pairs it ranks the right way."""
    return {"margin": round(margins.mean().item(), 4), "accuracy": round(100 * (margins > 0).float().mean().item(), 2)}


def _logprobs(model, batch: dict[str, torch.Tensor]) -> PairLogprobs:
    """The model's answer log-probs of a pair batch."""
    return PairLogprobs.split(*answer_logprobs(model, batch))


@torch.no_grad()
def _reference_logprobs(model, batch: dict[str, torch.Tensor]) -> PairLogprobs:
    """The reference model's answer log-probs (the start adapter, else the base), no gradients."""
    with reference_active(model):
        return _logprobs(model, batch)


@torch.no_grad()
def _base_logprobs(model, batch: dict[str, torch.Tensor]) -> PairLogprobs:
    """The base model's answer log-probs: the adapter switched off, no gradients."""
    with model.disable_adapter():
        return _logprobs(model, batch)
