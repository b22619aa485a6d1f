"""LoRA PPO of one domain (the InstructGPT recipe's last stage: SFT -> reward model -> PPO), read top to bottom:
setup -> train -> save -> evaluate -> register.

Policy, reference and reward model share ONE base in memory: the policy is the trained LoRA adapter (a fresh one, or
`train.init_adapter`, usually the domain's SFT adapter), the reference is the base with the adapter off (or, started
from an adapter, a frozen copy of it: InstructGPT's KL is to the SFT model), and the reward model (`--method rm`) is
a second, frozen adapter of the same peft model with its scalar head. A value head on the policy's final hidden
states estimates each answer token's return.

Each step samples one answer per prompt, scores it (the reward model, or with `ppo.reward: domain` the
domain's reward against the example's reference), and puts that score on the answer's last token with a
per-token penalty of `ppo.kl_coef` times the log-ratio to the reference. GAE turns those rewards and the
rollout values into advantages (whitened over the step) and returns; `ppo.epochs` clipped updates of the
policy and the value head follow. A step's samples come from a generator seeded by the step, so a run killed
at any point resumes from its newest checkpoint (adapter, value head, optimiser) and ends exactly where an
uninterrupted run would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from pixiu.config import RunConfig
from pixiu.data import StepBatches, TokenBudget, collate
from pixiu.devices import peak_memory, reset_peak_memory
from pixiu.distributed import Ranks
from pixiu.domain import Domain, Example, Messages
from pixiu.errors import PixiuError
from pixiu.evaluation import evaluate, reference_of, variant_answers
from pixiu.files import write_jsonl
from pixiu.generate import clean_answer, prompt_ids, rollout_examples, sample_completions
from pixiu.lora import attach_reference, reference_active
from pixiu.loss import labelled_outputs
from pixiu.plots import plot_loss_curve
from pixiu.ppo_loss import generalised_advantages, ppo_loss, token_rewards, whiten
from pixiu.preference import read_pair_split
from pixiu.progress import TrainProgress
from pixiu.reward_model import RewardModel, attach_reward_model, build_head, reward_model_folder
from pixiu.rewards import check_has_reward, mean_rewards, rollout_scores, score
from pixiu.runs import LOG_FILE, LOSS_PLOT_FILE, PREDICTIONS_FILE
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

ADAPTER_SUFFIX = "-ppo"
"""A PPO adapter registers as DOMAIN-ppo, beside the domain's SFT adapter."""
VALUE_KEY = "value_head"
"""The value head's weights sit under `value_head.*` in a checkpoint's adapter weights."""


@dataclass(frozen=True)
class _Prompts:
    """The prompts a run samples answers to, with what scoring an answer needs beside it."""

    train: list[Messages]
    references: list[Any]
    """Each training prompt's reference for the domain's reward (None under a reward model)."""
    held_out: list[Messages]
    held_out_chosen: list[str]
    """Under a reward model, the preferred answer of each held-out prompt's first pair, scored for comparison."""
    held_out_examples: list[Example]
    """Under the domain's reward, the held-out examples the domain's metrics score."""
    rejected: int


def run(
    domain: Domain,
    config: RunConfig,
    data_path: Path,
    run_dir: Path,
    *,
    resume: bool = False,
    console: Console | None = None,
) -> RunSummary:
    """Train a LoRA adapter for `domain` by PPO against a reward model (or the domain's reward) on the prompts of
    `data_path` into `run_dir`, compare its held-out reward with the base's, and register it as DOMAIN-ppo."""
    if config.ppo.reward == "domain":
        check_has_reward(domain)
    return run_on_ranks(run_dir, config, console, partial(_run, domain, config, data_path, resume=resume))


def _run(
    domain: Domain, config: RunConfig, data_path: Path, run_dir: Path, *, resume: bool, console: Console, ranks: Ranks
):
    """`run`, in the run folder (locked by rank 0)."""
    start = start_run(config, data_path, run_dir, resume=resume, ranks=ranks)  # nothing loaded for a run that cannot go
    checkpoints, hardware, init_folder = start.checkpoints, start.hardware, start.init_folder
    ppo = config.ppo
    rm_folder = _reward_model_folder(domain, config) if ppo.reward == "model" else None
    if rm_folder:
        console.print(f"reward model: {rm_folder}")

    # --- data ---------------------------------------------------------------------------------------------
    prompts = _read_prompts(
        data_path, domain, config, run_dir, console, resume=resume, pairs=rm_folder is not None, writes=ranks.is_main
    )

    # --- model --------------------------------------------------------------------------------------------
    base, tokenizer = load_training_base(config, hardware, console)
    encoded = prompt_ids(tokenizer, prompts.train, config.data.max_seq_len - ppo.max_new_tokens)
    budgets = [TokenBudget(len(ids) + ppo.max_new_tokens) for ids in encoded]
    batches = StepBatches(budgets, config.train.batch_tokens, config.train.seed)
    model = trainable_adapter(base, config, init_folder)
    attach_reference(model, init_folder)  # the KL's reference: the start (SFT) adapter, else the base
    reward_model = attach_reward_model(model, rm_folder, tokenizer) if rm_folder else None
    value_head = build_head(base.config.hidden_size, config.train.seed + 1, hardware.device)
    optimiser = Optimiser(
        model, config, hardware.scaler, ranks=ranks, extra=value_head.parameters(), updates_per_step=ppo.epochs
    )
    extra = {VALUE_KEY: value_head}
    start_step = resume_training(checkpoints, model, optimiser, console, extra=extra) if resume else 0
    if ranks.is_main:
        write_run_file(run_dir, domain, config, data_path, tokenizer, status="training")

    save = partial(save_training_checkpoint, run_dir, model=model, optimiser=optimiser, config=config, extra=extra)

    def values_of(hidden: torch.Tensor) -> torch.Tensor:
        """The value head's estimate at each answer position."""
        return value_head(hidden.float()).squeeze(-1)

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
                samples=1,
                max_new_tokens=ppo.max_new_tokens,
                temperature=ppo.temperature,
            )
            answers = [clean_answer(str(tokenizer.decode(c, skip_special_tokens=True))) for c in completions]
            scores = rollout_scores(
                partial(_rewards, domain, reward_model, prompts, mine, answers),
                ranks=ranks,
                domain=domain,
                step=step,
                run_dir=run_dir,
                save=save,
                since=start_step,
                save_every=config.train.save_every,
            )
            rows = rollout_examples([encoded[i] for i in mine], completions)
            batch = {k: v.to(hardware.device) for k, v in collate(rows, list(range(len(rows))), pad_id).items()}
            with torch.no_grad():  # the rollout's own log-probs and values, and the reference's log-probs
                rollout = labelled_outputs(model, batch)
                old_values = values_of(rollout.hidden)
                with reference_active(model):
                    reference = labelled_outputs(model, batch).logprobs
                kl = rollout.logprobs - reference
                rewards = token_rewards(scores.to(kl.device), kl, rollout.rows, ppo.kl_coef)
                advantages, returns = generalised_advantages(
                    rewards, old_values, rollout.rows, gamma=ppo.gamma, lam=ppo.lam
                )
                count, total, squares = ranks.sum(
                    advantages.numel(), advantages.sum(), advantages.square().sum(), counted=share.counted
                )
                advantages = whiten(advantages, (count, total, squares))  # over the step's tokens on every rank
            model.train()
            for _ in range(ppo.epochs):
                update = labelled_outputs(model, batch)
                result = ppo_loss(
                    update.logprobs,
                    rollout.logprobs,
                    advantages,
                    values_of(update.hidden),
                    old_values,
                    returns,
                    clip=ppo.clip,
                    value_clip=ppo.value_clip,
                    value_coef=ppo.value_coef,
                )
                optimiser.step(result.loss * share.part(advantages.numel(), count))
            mine_tokens = advantages.numel()  # the last update's figures are token means, as its loss
            loss_sum, policy_sum, value_sum, clipped, reward_sum, kl_sum, sampled, tokens = ranks.sum(
                mine_tokens * result.loss.item(),
                mine_tokens * result.policy_loss.item(),
                mine_tokens * result.value_loss.item(),
                mine_tokens * result.clip_fraction.item(),
                scores.sum(),
                kl.sum(),
                sum(map(len, completions)),
                sum(len(r) for r in rows),
                counted=share.counted,
            )
            loss_value = loss_sum / count
            row = step_log.write(
                step,
                began,
                tokens,
                loss=loss_value,
                policy_loss=policy_sum / count,
                value_loss=value_sum / count,
                clip_fraction=clipped / count,
                reward=reward_sum / len(indices),
                kl=kl_sum / len(indices),  # each answer's summed log-ratio to the reference
                answer_tokens=sampled / len(indices),
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
    model.save_pretrained(str(run_dir), selected_adapters=["default"])  # the policy; the reward model has its own
    plot_loss_curve(run_dir / LOG_FILE, run_dir / LOSS_PLOT_FILE, title=f"{domain.name} PPO on {config.base}")
    speed = step_log.tokens_per_second

    # --- evaluate -----------------------------------------------------------------------------------------
    metrics: dict = {
        "train": {
            **run_figures(config, hardware, run_dir, speed, memory),
            "reward": ppo.reward,
            "reward_model": str(rm_folder) if rm_folder else None,
            "kl_coef": ppo.kl_coef,
            "epochs": ppo.epochs,
            "prompts": len(prompts.train),
            "rejected_records": prompts.rejected,
        }
    }
    if reward_model is not None and prompts.held_out:
        metrics.update(_reward_model_evaluation(model, tokenizer, reward_model, prompts, config, domain, run_dir))
    elif prompts.held_out:
        evaluation = evaluate(
            model,
            tokenizer,
            domain,
            prompts.held_out_examples,
            config.eval,
            max_prompt_tokens=config.data.max_seq_len,
            predictions_path=run_dir / PREDICTIONS_FILE,
        )
        metrics.update(records=evaluation.records, **evaluation.scores)
        scored = prompts.held_out_examples[: evaluation.records]
        for variant, reward in mean_rewards(domain, scored, evaluation.answers).items():
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


def _reward_model_folder(domain: Domain, config: RunConfig) -> Path:
    """The reward model the run scores with (`ppo.reward_model`, else DOMAIN-rm), checked before anything loads."""
    try:
        return reward_model_folder(config.ppo.reward_model or domain.name + "-rm", base=config.base)
    except PixiuError as exc:
        raise PixiuError(
            f"{exc}\nppo scores answers with a reward model trained on its base: train one with "
            f"`pixiu domain train {domain.name} --method rm --base {config.base}`, name another with "
            "--set ppo.reward_model=NAME, or score with the domain's reward: --set ppo.reward=domain"
        ) from exc


def _read_prompts(
    data_path: Path,
    domain: Domain,
    config: RunConfig,
    run_dir: Path,
    console: Console,
    *,
    resume: bool,
    pairs: bool,
    writes: bool,
) -> _Prompts:
    """The run's prompts: those of its preference pairs (what a reward model was trained on), each once, or
    those of the domain's examples with their references (what the domain's reward scores against)."""
    if not pairs:
        split = read_example_split(data_path, domain, config, run_dir, console, resume=resume, writes=writes)
        train = [e.messages[:-1] for e in split.train]
        references = [reference_of(domain, e) for e in split.train]
        held_out_prompts = [e.messages[:-1] for e in split.held_out]
        return _Prompts(train, references, held_out_prompts, [], split.held_out, split.rejected)
    pair_split = read_pair_split(data_path, domain, config, run_dir, console, resume=resume, writes=writes)
    train_prompts = _first_answer_by_prompt([(p.prompt, p.chosen) for p in pair_split.train])
    held_out_chosen = _first_answer_by_prompt([(p.prompt, p.chosen) for p in pair_split.held_out])
    return _Prompts(
        [json.loads(p) for p in train_prompts],
        [None] * len(train_prompts),
        [json.loads(p) for p in held_out_chosen],
        list(held_out_chosen.values()),
        [],
        pair_split.rejected,
    )


def _first_answer_by_prompt(pairs: list[tuple[Messages, str]]) -> dict[str, str]:
    """Each distinct prompt (as JSON, in first-seen order) with the first answer given for it."""
    first: dict[str, str] = {}
    for prompt, answer in pairs:
        first.setdefault(json.dumps(prompt, ensure_ascii=False), answer)
    return first


def _rewards(
    domain: Domain, reward_model: RewardModel | None, prompts: _Prompts, indices: list[int], answers: list[str]
) -> list[float]:
    """The score of each sampled answer: the reward model's, or the domain's reward against the reference."""
    if reward_model is not None:
        return reward_model.score_batch([(prompts.train[i], a) for i, a in zip(indices, answers, strict=True)])
    return [score(domain, prompts.train[i], a, prompts.references[i]) for i, a in zip(indices, answers, strict=True)]


def _reward_model_evaluation(
    model, tokenizer, reward_model: RewardModel, prompts: _Prompts, config: RunConfig, domain: Domain, run_dir: Path
) -> dict:
    """The reward model's mean score of the base's and the adapter's greedy answers to the held-out prompts (and of
    the held-out preferred answers, for scale), each answer written to predictions.jsonl."""
    held_out = prompts.held_out[: config.eval.limit] if config.eval.limit else prompts.held_out
    answers = variant_answers(
        model, tokenizer, held_out, config.eval, max_prompt_tokens=config.data.max_seq_len, title=domain.name
    )
    answers["chosen"] = prompts.held_out_chosen[: len(held_out)]
    scores = {
        variant: reward_model.score_batch(list(zip(held_out, texts, strict=True))) for variant, texts in answers.items()
    }
    write_jsonl(
        run_dir / PREDICTIONS_FILE,
        [
            {"prompt": prompt, **{v: answers[v][i] for v in answers}, **{f"{v}_reward": scores[v][i] for v in scores}}
            for i, prompt in enumerate(held_out)
        ],
    )
    return {"records": len(held_out), **{v: {"reward": round(sum(s) / len(s), 4)} for v, s in scores.items()}}
