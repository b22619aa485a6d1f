"""Reward models: a LoRA-adapted base whose final hidden state at an answer's last token goes through a scalar
head, so that a preferred answer scores higher (Bradley-Terry). `--method rm` trains one; PPO and serving
score answers with the model `load_reward_model` returns.

No vocabulary projection runs: the decoder's hidden states feed the head alone. Rows are right-padded and
attention is causal, so a row's score never depends on the padding after it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import PeftModel
from safetensors.torch import load_file, save_file

from pixiu.data import IGNORE_INDEX, collate
from pixiu.devices import Precision, placement
from pixiu.domain import Messages
from pixiu.errors import PixiuError
from pixiu.lora import frozen_adapter_active
from pixiu.preference import tokenize_answer

HEAD_FILE = "reward_head.safetensors"
"""The scalar head's weights in a reward model's run folder, beside peft's adapter files."""
HEAD_KEY = "reward_head"
"""The head's weights sit under `reward_head.*` in a checkpoint's adapter weights."""


def build_head(hidden_size: int, seed: int, device: torch.device | None = None) -> torch.nn.Linear:
    """A fresh fp32 scalar head: small normal weights drawn from `seed`, a zero bias (every score starts near 0)."""
    head = torch.nn.Linear(hidden_size, 1, dtype=torch.float32)
    with torch.no_grad():
        head.weight.normal_(std=hidden_size**-0.5 / 10, generator=torch.Generator().manual_seed(seed))
        head.bias.zero_()
    return head.to(device)


def last_answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Per row, the position of its last labelled token (the answer's end); padding is never labelled."""
    positions = torch.arange(labels.shape[1], device=labels.device).expand_as(labels)
    return torch.where(labels != IGNORE_INDEX, positions, -1).max(dim=1).values


def score_rows(model: PeftModel, head: torch.nn.Linear, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One fp32 score per batch row: the head on the final hidden state of the row's last answer token."""
    causal_lm: Any = model.get_base_model()  # its LoRA layers live inside the base model
    decoder = getattr(causal_lm, causal_lm.base_model_prefix)
    hidden = decoder(input_ids=batch["input_ids"], use_cache=False).last_hidden_state
    rows = torch.arange(len(hidden), device=hidden.device)
    last = hidden[rows, last_answer_positions(batch["labels"]).to(hidden.device)]
    return head(last.float()).squeeze(-1)


def pair_loss(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bradley-Terry on a pair batch's scores (n chosen, then n rejected): the mean loss and each pair's margin."""
    chosen, rejected = scores.chunk(2)
    margins = chosen - rejected
    return -F.logsigmoid(margins).mean(), margins


def save_head(head: torch.nn.Linear, folder: Path) -> None:
    """Write the head's weights to `folder`/reward_head.safetensors."""
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(Path(folder) / HEAD_FILE))


def load_head(folder: Path, device: torch.device | None = None) -> torch.nn.Linear:
    """The head saved in `folder` by `save_head`."""
    weights = load_file(str(Path(folder) / HEAD_FILE), device="cpu")
    head = torch.nn.Linear(weights["weight"].shape[1], 1, dtype=torch.float32)
    head.load_state_dict(weights)
    return head.to(device)


@dataclass
class RewardModel:
    """A trained reward model ready to score answers to chat prompts, as it was trained to (same template, same
    `max_len` cut)."""

    model: PeftModel
    head: torch.nn.Linear
    tokenizer: Any
    max_len: int
    adapter: str | None = None
    """The reward model's adapter name in `model` when it shares the model with a trained policy (ppo);
    None when its adapter is the model's only one."""

    def score(self, prompt: Messages | str, answer: str) -> float:
        """The reward of `answer` after `prompt` (chat messages, or a user message's text)."""
        return self.score_batch([(prompt, answer)])[0]

    @torch.no_grad()
    def score_batch(self, items: Sequence[tuple[Messages | str, str]], batch_size: int = 16) -> list[float]:
        """The reward of each (prompt, answer), `batch_size` rows at a time."""
        examples = [
            tokenize_answer(self.tokenizer, _messages(prompt), answer, self.max_len) for prompt, answer in items
        ]
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = self.head.weight.device
        scores: list[float] = []
        self.model.eval()
        with frozen_adapter_active(self.model, self.adapter) if self.adapter else contextlib.nullcontext():
            for start in range(0, len(examples), batch_size):
                batch = collate(examples, list(range(start, min(start + batch_size, len(examples)))), pad_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                scores.extend(score_rows(self.model, self.head, batch).tolist())
        return scores


def reward_model_folder(run_dir_or_name: str | Path, *, base: str | None = None) -> Path:
    """The run folder of a reward model (its folder, or its registered name such as zhihu-rm), checked to be one
    (and, given `base`, to be trained on that base) before anything loads."""
    from pixiu.registry import resolve_adapter
    from pixiu.runs import read_run_file

    folder = resolve_adapter(str(run_dir_or_name))
    if not is_reward_model(folder):
        raise PixiuError(f"{folder} is not a reward model: it has no {HEAD_FILE} (train one with --method rm)")
    recorded = read_run_file(folder).get("base_model")
    if recorded is None:
        raise PixiuError(f"{folder} has no pixiu_run.yaml naming its base model; it was not trained by pixiu")
    if base is not None and recorded != base:
        raise PixiuError(
            f"the reward model {folder} was trained on the base {recorded}, not on {base}; the policy and the "
            f"reward model share one base in memory: pass --base {recorded}, or train a reward model on {base}"
        )
    return folder


def load_reward_model(
    run_dir_or_name: str | Path, *, device: str = "auto", precision: Precision = "auto"
) -> RewardModel:
    """Load a reward model trained by `--method rm`: its run folder, or its registered name (e.g. law-rm)."""
    from pixiu.lora import load_adapter
    from pixiu.models import load_base
    from pixiu.runs import read_run_file

    folder = reward_model_folder(run_dir_or_name)
    target, dtype = placement(device, precision)
    base, tokenizer = load_base(read_run_file(folder)["base_model"], dtype=dtype, device=target)
    model = load_adapter(base, folder)
    model.eval()
    return RewardModel(model, load_head(folder, target), tokenizer, trained_max_len(folder))


REWARD_ADAPTER = "reward"
"""The reward model's adapter name when `attach_reward_model` loads it beside a policy."""


def attach_reward_model(policy: PeftModel, folder: Path, tokenizer: Any) -> RewardModel:
    """The reward model in `folder` (checked by `reward_model_folder`) as a second, frozen adapter of the policy's
    own peft model, so that policy, reference and reward model share one base in memory."""
    policy.load_adapter(str(folder), adapter_name=REWARD_ADAPTER, is_trainable=False)
    head = load_head(folder, next(policy.parameters()).device)
    return RewardModel(policy, head, tokenizer, trained_max_len(folder), adapter=REWARD_ADAPTER)


def is_reward_model(folder: Path) -> bool:
    """Whether the adapter folder holds a reward model (a scalar head beside its LoRA weights)."""
    return (Path(folder) / HEAD_FILE).is_file()


def trained_max_len(folder: Path) -> int:
    """The `data.max_seq_len` the reward model in `folder` was trained with, so it scores answers cut the same way.

    Only the `data` section is read: the rest of the config may hold a domain's own settings, which need the
    domain's plugin to check."""
    from pixiu.config import DataArgs
    from pixiu.runs import read_run_file

    config = read_run_file(folder).get("config") or {}
    return DataArgs.model_validate(config.get("data") or {}).max_seq_len


def _messages(prompt: Messages | str) -> Messages:
    """A prompt given as text is one user message."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
