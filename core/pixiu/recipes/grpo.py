"""LoRA GRPO (group-relative policy optimisation, Shao et al. 2024) of one domain with the domain's own reward,
read top to bottom: setup -> train -> save -> evaluate -> register.

Each step samples `grpo.group_size` answers to each of its prompts, scores them with `Domain.reward`, and takes each
answer's advantage as its reward against its group's mean and spread: no value model. One gradient step follows each
batch of samples (on-policy), so the policy ratio is 1 and PPO's clipping never binds; the loss is the token-level
mean of -advantage × ratio, plus `grpo.beta` × the KL estimate to the reference (the base with the adapter off, or a
frozen copy of `train.init_adapter`) when beta > 0. A step's samples are drawn from a generator seeded by the step,
so a run killed at any point resumes from its newest checkpoint and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from pixiu.config import RunConfig
from pixiu.data import StepBatches, TokenBudget, collate
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain, Messages
from pixiu.evaluation import evaluate, reference_of
from pixiu.generate import clean_answer, prompt_ids, rollout_examples, sample_completions
from pixiu.lora import attach_reference, reference_active
from pixiu.loss import token_logprobs
from pixiu.plots import plot_loss_curve
from pixiu.progress import TrainProgress
from pixiu.rewards import check_has_reward, mean_rewards, rollout_scores, score
from pixiu.runs import (
    LOG_FILE,
    LOSS_PLOT_FILE,
    PREDICTIONS_FILE,
)
from pixiu.training import (
    Optimiser,
    RunSummary,
    StepLog,
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
    save_training_checkpoint,
    start_run,
    trainable_adapter,
    write_run_file,
)

ADAPTER_SUFFIX = "-grpo"
"""A GRPO adapter registers as DOMAIN-grpo, beside the domain's SFT adapter."""


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a LoRA adapter for `domain` by GRPO on the prompts of `data_path` into `run_dir`, score it against the
    base (the domain's metrics and its mean reward on held-out records), and register it as DOMAIN-grpo."""
    check_has_reward(domain)
    return run_on_ranks(run_dir, config, console, partial(_run, domain, config, data_path, resume=resume))


def _run(
    domain: Domain, config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, console: Console, ranks: Ranks
):
    """`run`, in the run folder (locked by rank 0)."""
    start = start_run(config, data_path, run_dir, resume=resume, ranks=ranks)  # nothing loaded for a run that cannot go
    checkpoints, hardware, init_folder = start.checkpoints, start.hardware, start.init_folder
    grpo = config.grpo

    # --- data ---------------------------------------------------------------------------------------------
    split = read_example_split(data_path, domain, config, run_dir, console, resume=resume, writes=ranks.is_main)
    train_examples, eval_examples = split.train, split.held_out

    # --- model --------------------------------------------------------------------------------------------
    base, tokenizer = load_training_base(config, hardware, console)
    prompts = [e.messages[:-1] for e in train_examples]
    references = [reference_of(domain, e) for e in train_examples]
    encoded = prompt_ids(tokenizer, prompts, config.data.max_seq_len - grpo.max_new_tokens)
    budgets = [TokenBudget(grpo.group_size * (len(ids) + grpo.max_new_tokens)) for ids in encoded]
    batches = StepBatches(budgets, config.train.batch_tokens, config.train.seed)
    model = trainable_adapter(base, config, init_folder)
    attach_reference(model, init_folder)  # the KL's reference: the start adapter, else the base
    optimiser = Optimiser(model, config, hardware.scaler, ranks=ranks)
    start_step = resume_training(checkpoints, model, optimiser, console) if resume else 0
    if ranks.is_main:
        write_run_file(run_dir, domain, config, data_path, tokenizer, status="training")

    save = partial(save_training_checkpoint, run_dir, model=model, optimiser=optimiser, config=config)

    # --- train --------------------------------------------------------------------------------------------
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    tracker = run_tracker(run_dir, domain, config, ranks)
    log = open_log(run_dir / LOG_FILE, keep_through=start_step, writes=ranks.is_main, tracker=tracker)
    reset_peak_memory(hardware.device)
    with TrainProgress(console, total=config.train.max_steps, start=start_step) as progress:
        step_log = StepLog(log, progress, batches, optimiser)
        for step in range(start_step, config.train.max_steps):
            began = time.perf_counter()
            indices = batches.for_step(step)
            share = ranks.rows(budgets, indices)  # this rank's prompts; the whole batch when alone
            mine = share.rows
            torch.manual_seed(config.train.seed * 1_000_003 + step)  # the step's samples, wherever the run resumed
            model.eval()
            completions = sample_completions(
                model,
                tokenizer,
                [encoded[i] for i in mine],
                samples=grpo.group_size,
                max_new_tokens=grpo.max_new_tokens,
                temperature=grpo.temperature,
            )
            owners = [i for i in mine for _ in range(grpo.group_size)]  # the prompt of each sampled answer
            answers = [clean_answer(str(tokenizer.decode(c, skip_special_tokens=True))) for c in completions]
            rewards = rollout_scores(
                partial(_rewards, domain, [(prompts[i], references[i]) for i in owners], answers),
                ranks=ranks,
                domain=domain,
                step=step,
                run_dir=run_dir,
                save=save,
                since=start_step,
                save_every=config.train.save_every,
            )
            groups = rewards.view(-1, grpo.group_size)
            advantages = ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + 1e-4)).flatten()
            rows = rollout_examples([encoded[i] for i in owners], completions)
            model.train()
            batch = {k: v.to(hardware.device) for k, v in collate(rows, list(range(len(rows))), pad_id).items()}
            logprobs, row_of = token_logprobs(model, batch)
            per_token = -advantages.to(logprobs.device)[row_of] * torch.exp(logprobs - logprobs.detach())
            kl = None
            if grpo.beta > 0:
                with torch.no_grad(), reference_active(model):
                    reference, _ = token_logprobs(model, batch)
                delta = reference - logprobs
                kl = torch.exp(delta) - delta - 1  # k3, an unbiased, positive estimate of KL(policy || reference)
                per_token = per_token + grpo.beta * kl
            # the mean over every answer token of the step (on all ranks), so long answers are not down-weighted
            (answer_tokens,) = ranks.sum(per_token.numel(), counted=share.counted)
            optimiser.step(per_token.mean() * share.part(per_token.numel(), answer_tokens))
            loss_sum, reward_sum, spread_sum, kl_sum, sampled, tokens = ranks.sum(
                per_token.sum(),
                groups.mean(1).sum(),
                groups.std(1).sum(),
                kl.sum() if kl is not None else 0.0,
                sum(map(len, completions)),
                sum(len(r) for r in rows),
                counted=share.counted,
            )
            loss_value = loss_sum / answer_tokens
            row = step_log.write(
                step,
                began,
                tokens,
                loss=loss_value,
                reward=reward_sum / len(indices),
                reward_std=spread_sum / len(indices),
                kl=kl_sum / answer_tokens if kl is not None else None,
                answer_tokens=sampled / (len(indices) * grpo.group_size),
                prompts=len(indices),
            )
            if checkpoint_due(step + 1, config) and ranks.is_main:
                save(step + 1)
                progress.note(f"checkpoint saved: step {step + 1}  mean reward {row['reward']:.3f}")
    log.close()
    memory = peak_memory(hardware.device)
    if not ranks.is_main:  # rank 0 saves, evaluates and registers for all
        return rank_done(run_dir, config, step_log.tokens_per_second)

    # --- save ---------------------------------------------------------------------------------------------
    model.save_pretrained(str(run_dir), selected_adapters=["default"])  # the trained adapter, not the reference
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} GRPO on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "group_size": grpo.group_size,
            "beta": grpo.beta,
            "examples": len(train_examples),
            "rejected_records": split.rejected,
        }
    }
    if eval_examples:
        result = evaluate(
            model,
            tokenizer,
            domain,
            eval_examples,
            config.eval,
            max_prompt_tokens=config.data.max_seq_len,
            predictions_path=run_dir / PREDICTIONS_FILE,
        )
        metrics.update(records=result.records, **result.scores)
        for variant, reward in mean_rewards(domain, eval_examples[: result.records], result.answers).items():
            metrics[variant]["reward"] = reward

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


def _rewards(domain: Domain, asked: list[tuple[Messages, Any]], answers: list[str]) -> list[float]:
    """The domain's reward of each sampled answer, against its prompt's reference."""
    return [
        score(domain, prompt, answer, reference) for (prompt, reference), answer in zip(asked, answers, strict=True)
    ]
