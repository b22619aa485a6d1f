"""LoRA KTO (Ethayarajh et al. 2024) of one domain on unpaired feedback, read top to bottom: setup -> train ->
save -> evaluate -> register.

Each answer is marked desirable (thumbs up) or undesirable (thumbs down); preference pairs count as one of each.
The reference model is the base itself with the adapter switched off (one copy of the base in memory), or a
frozen copy of `train.init_adapter` when the run starts from one. A step is
a length-grouped batch of answers; its reference point, the KL between policy and reference, is estimated on the
same batch with each prompt given the previous row's answer, as trl does. Killed at any point, a run resumes
from its newest checkpoint with `resume=True` and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import torch
from rich.console import Console

from pixiu.config import RunConfig
from pixiu.data import StepBatches, TokenizedExample, collate
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain
from pixiu.feedback import TokenizedFeedback, read_feedback_split, tokenize_feedback_split
from pixiu.lora import attach_reference, has_reference, reference_active
from pixiu.loss import answer_logprobs
from pixiu.plots import plot_loss_curve
from pixiu.preference import tokenize_answer
from pixiu.preference_loss import kto_loss
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

ADAPTER_SUFFIX = "-kto"
"""A KTO adapter registers as DOMAIN-kto, beside the domain's SFT adapter."""


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a LoRA adapter for `domain` by KTO on the feedback of `data_path` into `run_dir`, compare how the base
    and the adapter separate held-out desirable from undesirable answers, and register it as DOMAIN-kto."""
    return run_on_ranks(run_dir, config, console, partial(_run, domain, config, data_path, resume=resume))


def _run(
    domain: Domain, config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, console: Console, ranks: Ranks
):
    """`run`, in the run folder (locked by rank 0)."""
    start = start_run(config, data_path, run_dir, resume=resume, ranks=ranks)  # nothing loaded for a run that cannot go
    checkpoints, hardware, init_folder = start.checkpoints, start.hardware, start.init_folder
    kto, max_len = config.kto, config.data.max_seq_len

    # --- data ---------------------------------------------------------------------------------------------
    split = read_feedback_split(data_path, domain, config, run_dir, console, resume=resume, writes=ranks.is_main)

    # --- model --------------------------------------------------------------------------------------------
    base, tokenizer = load_training_base(config, hardware, console)
    answers = tokenize_feedback_split(tokenizer, split, config, run_dir, console, writes=ranks.is_main)
    tokenized, held_out = answers.train, answers.held_out
    model = trainable_adapter(base, config, init_folder)
    attach_reference(model, init_folder)  # the reference: the start adapter, else the base
    optimiser = Optimiser(model, config, hardware.scaler, ranks=ranks)
    start_step = resume_training(checkpoints, model, optimiser, console) if resume else 0
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
            share = ranks.rows(tokenized, indices)  # this rank's answers; the whole batch when alone
            mine = share.rows
            batch = _batch([tokenized[i].example for i in mine], pad_id, hardware.device)
            mismatched = _batch(_mismatched(tokenizer, tokenized, indices, mine, max_len), pad_id, hardware.device)
            desirable = torch.tensor([tokenized[i].desirable for i in mine], device=hardware.device)
            policy, _ = answer_logprobs(model, batch)
            with torch.no_grad():
                reference = _reference_logprobs(model, batch)
                kl_sum = (answer_logprobs(model, mismatched)[0] - _reference_logprobs(model, mismatched)).sum()
                kl_total, kl_rows = ranks.sum(kl_sum, len(mine), counted=share.counted)  # the whole step's estimate
                kl = torch.tensor(kl_total / kl_rows, device=hardware.device)
            result = kto_loss(
                policy,
                reference,
                desirable,
                kl,
                beta=kto.beta,
                desirable_weight=kto.desirable_weight,
                undesirable_weight=kto.undesirable_weight,
            )
            optimiser.step(result.losses.mean() * share.part(len(mine), len(indices)))
            liked, disliked = result.rewards[desirable], result.rewards[~desirable]
            loss_sum, liked_sum, liked_count, disliked_sum, disliked_count = ranks.sum(
                result.losses.sum(), liked.sum(), liked.numel(), disliked.sum(), disliked.numel(), counted=share.counted
            )
            loss_value = loss_sum / len(indices)
            tokens = sum(len(tokenized[i]) for i in indices)
            step_log.write(
                step,
                began,
                tokens,
                loss=loss_value,
                desirable_reward=_mean_of(liked_sum, liked_count),
                undesirable_reward=_mean_of(disliked_sum, disliked_count),
                kl=result.reference_point.item(),
                answers=len(indices),
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
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} KTO on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "beta": kto.beta,
            "answers": len(tokenized),
            "desirable": sum(a.desirable for a in tokenized),
            "rejected_records": split.rejected
            + len(split.train)
            + len(split.held_out)
            - len(tokenized)
            - len(held_out),
        }
    }
    if held_out:
        console.print(f"scoring {len(held_out)} held-out answers with the base and the adapter")
        metrics.update(
            records=len(held_out), **feedback_scores(model, held_out, config.train.batch_tokens, pad_id, kto.beta)
        )

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
def feedback_scores(
    model, answers: Sequence[TokenizedFeedback], batch_tokens: int, pad_id: int, beta: float
) -> dict[str, dict[str, float]]:
    """How the base and the adapter tell held-out desirable answers from undesirable ones: the per-token mean
    log-prob of each kind and their gap (`margin`), and for the adapter the implicit reward (beta × log-ratio to
    the base) of each kind, their gap (`reward_margin`) and the share of answers on the right side of 0
    (`reward_accuracy`, %)."""
    model.eval()
    device = next(model.parameters()).device
    sums: dict[str, list[torch.Tensor]] = {"base": [], "adapter": [], "reference": []}
    counts, desirable = [], []
    for indices in StepBatches(answers, batch_tokens, seed=0).batches_in_epoch(0):
        batch = _batch([answers[i].example for i in indices], pad_id, device)
        adapter, tokens = answer_logprobs(model, batch)
        sums["adapter"].append(adapter.float().cpu())
        base = _base_logprobs(model, batch).float().cpu()
        sums["base"].append(base)
        sums["reference"].append(_reference_logprobs(model, batch).float().cpu() if has_reference(model) else base)
        counts.append(tokens.cpu())
        desirable.append(torch.tensor([answers[i].desirable for i in indices]))
    labels, tokens = torch.cat(desirable), torch.cat(counts).clamp(min=1)
    scores = {}
    for variant in ("base", "adapter"):
        values = sums[variant]
        means = torch.cat(values) / tokens
        good, bad = _mean(means[labels]), _mean(means[~labels])
        scores[variant] = {"desirable_logprob": good, "undesirable_logprob": bad, "margin": round(good - bad, 4)}
    rewards = beta * (torch.cat(sums["adapter"]) - torch.cat(sums["reference"]))  # KTO's implied reward
    right = torch.where(labels, rewards > 0, rewards < 0)
    scores["adapter"].update(
        reward_margin=round(_mean(rewards[labels]) - _mean(rewards[~labels]), 4),
        reward_accuracy=round(100 * right.float().mean().item(), 2),
    )
    return scores


def _batch(rows: list[TokenizedExample], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """`rows` right-padded into one batch on `device`."""
    return {k: v.to(device) for k, v in collate(rows, list(range(len(rows))), pad_id).items()}


def _mismatched(
    tokenizer, answers: Sequence[TokenizedFeedback], indices: list[int], rows: list[int], max_len: int
) -> list[TokenizedExample]:
    """Each of `rows`' prompt with the answer of the row before it in the step batch `indices` (the last row's for
    the first): KTO's KL estimate reads how far the policy moved on answers that do not belong to their prompts."""
    previous = dict(zip(indices, indices[-1:] + indices[:-1], strict=True))
    return [
        tokenize_answer(tokenizer, answers[i].answer.prompt, answers[previous[i]].answer.completion, max_len)
        for i in rows
    ]


def _mean(values: torch.Tensor) -> float:
    """The mean of `values` rounded, or 0 when there are none (answers of one kind only)."""
    return _mean_of(values.sum().item(), values.numel())


def _mean_of(total: float, count: float) -> float:
    """`total` / `count` rounded for the log, or 0 when there is nothing to average (a batch of one kind)."""
    return round(total / count, 4) if count else 0.0


@torch.no_grad()
def _reference_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The reference model's summed answer log-probs: the start adapter, else the base."""
    with reference_active(model):
        return answer_logprobs(model, batch)[0]


@torch.no_grad()
def _base_logprobs(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The base model's summed answer log-probs: the adapter switched off."""
    with model.disable_adapter():
        return answer_logprobs(model, batch)[0]
