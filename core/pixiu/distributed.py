"""Data-parallel training through Hugging Face accelerate: who this process is, which rows it trains, how it starts.

`pixiu domain train --devices N` re-starts the same command under accelerate's own launcher with the shipped
config of `train.strategy`; inside, `Ranks` wraps accelerate's `Accelerator` for everything that involves
more than one process. Under `accelerate launch` or `torchrun` the launcher's process count is used.

Every rank computes the same global step batch (from the seed and the step) and trains a disjoint share of
its rows, balanced by tokens; the summed loss is scaled by world size / global labelled tokens, so DDP's
gradient average equals the one-process gradient and the adapter does not depend on the number of devices.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence, Sized
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from pixiu.checkpoint import list_checkpoints
from pixiu.data import IGNORE_INDEX, TokenizedExample
from pixiu.errors import PixiuError
from pixiu.optimizer_state import gather_full, parameter_names, scatter_full

SHARDED = ("fsdp", "deepspeed-zero3")
"""Strategies that shard the weights themselves: the adapter must be gathered, and rank 0 cannot generate alone."""


def under_launcher() -> bool:
    """True inside a process started by `accelerate launch`, `torchrun` or another torch.distributed launcher."""
    return "LOCAL_RANK" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process() -> bool:
    """True in the process that writes files and prints: the only one, or rank 0 under a launcher."""
    return int(os.environ.get("RANK", "0")) == 0


def strategy_config(strategy: str) -> Path:
    """The accelerate config file shipped for `strategy` (ddp, fsdp, deepspeed-zero2, deepspeed-zero3)."""
    path = Path(str(resources.files("pixiu") / "accelerate_configs" / f"{strategy}.yaml"))
    if not path.is_file():
        raise PixiuError(f"unknown strategy {strategy!r}; use ddp, fsdp, deepspeed-zero2 or deepspeed-zero3")
    return path


def check_devices(devices: int, strategy: str, device: str) -> None:
    """Refuse, before anything is loaded, a device count or strategy this machine cannot run.

    On a machine without CUDA (or with `train.device: cpu`) N CPU processes talk over gloo; that works and is
    how pixiu's tests check data parallelism, but it is no speed-up over one process using every core.

    Raises:
        PixiuError: More GPUs asked for than are visible, a GPU-only strategy on the CPU, or DeepSpeed missing.
    """
    on_cpu = device == "cpu" or not torch.cuda.is_available()
    if strategy != "ddp" and on_cpu:
        raise PixiuError(
            f"train.strategy={strategy} needs CUDA GPUs (this run is on the CPU, where accelerate runs neither FSDP "
            "nor DeepSpeed); use train.strategy=ddp, which runs CPU processes over gloo"
        )
    if strategy.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        raise PixiuError(f"train.strategy={strategy} needs DeepSpeed: pip install 'pixiu[deepspeed]'")
    if not on_cpu and devices > torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise PixiuError(
            f"--devices {devices}: this machine has {count} CUDA device{'s' if count != 1 else ''} visible; "
            f"use --devices {count} or fewer (check CUDA_VISIBLE_DEVICES), or train.device=cpu for CPU processes"
        )


def launch_command(argv: Sequence[str], devices: int, strategy: str) -> list[str]:
    """`python -m accelerate.commands.launch` with the strategy's config and N processes, running `pixiu argv`."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(strategy_config(strategy)),
        "--num_processes",
        str(devices),
        "-m",
        "pixiu",
        *argv,
    ]


def launch(command: Sequence[str], run_dir: Path, resume_command: str) -> None:
    """Run the launcher `command` and wait; a failed rank becomes an error naming the newest checkpoint.

    Raises:
        PixiuError: The launcher exited non-zero (a rank died or raised); says how to resume.
    """
    status = subprocess.run(list(command), check=False).returncode
    if status == 0:
        return
    checkpoints = list_checkpoints(run_dir) if Path(run_dir).is_dir() else []
    where = (
        f"the newest checkpoint is {checkpoints[-1]}; continue with:\n  {resume_command}"
        if checkpoints
        else "no checkpoint was written yet, so start it again"
    )
    raise PixiuError(f"a training process failed (the launcher exited with status {status}); {where}")


def split_rows(lengths: Sequence[int] | Mapping[int, int], rows: Sequence[int], world_size: int) -> list[list[int]]:
    """Split `rows` (example indices) into `world_size` disjoint shares with about equal tokens.

    Longest first, each row goes to the share with the fewest tokens so far (ties to the lower rank), so
    every rank computes the same split without talking to the others.
    """
    shares: list[list[int]] = [[] for _ in range(world_size)]
    tokens = [0] * world_size
    for row in sorted(rows, key=lambda r: (-lengths[r], r)):
        rank = min(range(world_size), key=lambda k: (tokens[k], k))
        shares[rank].append(row)
        tokens[rank] += lengths[row]
    return shares


def labelled_count(example: TokenizedExample) -> int:
    """Tokens of `example` that are loss targets (each label after the first predicts from the one before)."""
    return sum(label != IGNORE_INDEX for label in example.labels[1:])


@dataclass(frozen=True)
class Share:
    """The rows one rank trains in one step, and the factor that turns its summed loss into its gradient share."""

    rows: list[int]
    weight: float
    """world size / labelled tokens of the whole step batch; 0 for a stand-in row of a rank with no share."""
    labelled_tokens: int
    """Labelled tokens of the whole step batch, across all ranks."""


def _number(value: float | torch.Tensor) -> float:
    """A logged figure as a float, read off any autograd graph."""
    return float(value.detach()) if isinstance(value, torch.Tensor) else float(value)


@dataclass(frozen=True)
class RowShare:
    """The rows one rank trains in one step of a recipe that syncs its own gradients (`Ranks.sum_gradients`)."""

    rows: list[int]
    counted: bool
    """False for a rank's stand-in row: it runs forward and backward but counts nothing."""

    def part(self, mine: float, total: float) -> float:
        """This rank's part of the step's mean loss: its `mine` of the step's `total` units (pairs, tokens)."""
        return mine / total if self.counted and total else 0.0


class _LossModule(torch.nn.Module):
    """The peft model plus the loss as one module, so DDP/FSDP/DeepSpeed see the forward pass they wrap."""

    loss: Callable[..., tuple[torch.Tensor, int]]

    def __init__(self, model: Any, loss: Callable[..., tuple[torch.Tensor, int]]):
        super().__init__()
        self.model = model
        self.loss = loss
        # FSDP's TRANSFORMER_BASED_WRAP finds the decoder layer class here, as on a transformers model
        self._no_split_modules = getattr(model.get_base_model(), "_no_split_modules", None)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy over the batch's labelled tokens."""
        return self.loss(self.model, {"input_ids": input_ids, "labels": labels})[0]


class Ranks:
    """This process's part in a run: one process alone, or one rank of an accelerate launch."""

    def __init__(self, accelerator: Any = None, strategy: str = "ddp"):
        self.accelerator = accelerator
        self.strategy = strategy
        self.world_size = accelerator.num_processes if accelerator else 1
        self.is_main = accelerator.is_main_process if accelerator else True
        self._prepared: Any = None
        self._gathered: dict[str, torch.Tensor] | None = None
        self._names: list[str] = []

    @classmethod
    def start(cls, device: str, strategy: str) -> Ranks:
        """Join the launch this process belongs to (an `Accelerator` on gloo or NCCL), or stand alone."""
        if not under_launcher():
            return cls()
        from accelerate import Accelerator

        return cls(Accelerator(cpu=device == "cpu" or not torch.cuda.is_available()), strategy)

    @property
    def device(self) -> torch.device | None:
        """This rank's device under a launcher (cuda:LOCAL_RANK, or the CPU); None when standing alone."""
        return self.accelerator.device if self.accelerator else None

    @property
    def can_evaluate(self) -> bool:
        """Whether rank 0 holds whole weights, so it can generate alone after training."""
        return self.strategy not in SHARDED or self.world_size == 1

    def cpu_threads(self) -> int:
        """This process's fair part of the CPU cores: all of them alone, a 1/N share with N processes on the machine."""
        return max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))

    def rows(self, items: Sequence[Sized], rows: Sequence[int]) -> RowShare:
        """This rank's rows of the step batch `rows` (indices into `items`), balanced by their lengths; a rank left
        without any gets the first row as an uncounted stand-in, so that every rank runs the same passes."""
        rank = self.accelerator.process_index if self.accelerator else 0
        share = set(split_rows({r: len(items[r]) for r in rows}, rows, self.world_size)[rank])
        mine = [r for r in rows if r in share]  # in the step's order, so one process samples as it always did
        return RowShare(mine, True) if mine else RowShare([rows[0]], False)

    def share(self, examples: Sequence[TokenizedExample], rows: Sequence[int]) -> Share:
        """This rank's rows of the step batch `rows`; a rank left without rows trains the first, weighted 0."""
        count = sum(labelled_count(examples[r]) for r in rows)
        mine = self.rows(examples, rows)
        return Share(mine.rows, self.world_size / max(count, 1) if mine.counted else 0.0, count)

    def sum(self, *values: float | torch.Tensor, counted: bool = True) -> list[float]:
        """Each value added up over the ranks in one all-reduce (the values themselves when alone); a rank whose
        rows are an uncounted stand-in (`counted` false, `RowShare.counted`) adds 0 for each."""
        stacked = torch.tensor([_number(v) if counted else 0.0 for v in values], dtype=torch.float64)
        if self.accelerator and self.world_size > 1:
            stacked = self.accelerator.reduce(stacked.to(self.accelerator.device), reduction="sum").cpu()
        return stacked.tolist()

    def step_means(self, share: RowShare, rows: int, **sums: float | torch.Tensor) -> dict[str, float]:
        """Each named sum over this rank's rows (nothing for a stand-in), added up over the ranks and divided by
        the step's `rows`: the step's mean of each, as one process would log it."""
        totals = self.sum(*sums.values(), counted=share.counted)
        return {name: total / rows for name, total in zip(sums, totals, strict=True)}

    def sum_gradients(self, parameters: Sequence[torch.nn.Parameter]) -> None:
        """Add the trainable weights' gradients up over the ranks in one all-reduce, as DDP would (nothing alone).

        The recipes that sample, score with a second adapter or keep a head beside the adapter (every method but
        sft) run their passes on the unwrapped model and sync here, so each rank's loss must be its part of the
        step's loss (its rows' share of the global mean): the summed gradient is then the one-process gradient.
        """
        if not self.accelerator or self.world_size == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
        flat = self.accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), reduction="sum")
        for parameter, summed in zip(parameters, flat.split([g.numel() for g in grads]), strict=True):
            parameter.grad = summed.view_as(parameter)

    def prepare(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Callable[..., tuple[torch.Tensor, int]]
    ) -> tuple[Callable[[dict[str, torch.Tensor]], torch.Tensor], torch.optim.Optimizer]:
        """(summed loss of a batch, optimizer), wrapped by `accelerator.prepare` for the strategy under a launcher.

        A resumed run's optimizer comes here holding the checkpoint's whole state; under fsdp each rank keeps its
        shard of it, under DeepSpeed it is dropped (`restarts_optimizer`).
        """
        if not self.accelerator:
            return (lambda batch: loss(model, batch)[0]), optimizer
        plugin = self.accelerator.state.deepspeed_plugin
        if plugin is not None:  # there is no DataLoader to read it from; a step is one token-budgeted batch
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = 1
        wrapped = _LossModule(model, loss)
        self._names = parameter_names(wrapped, optimizer)  # FSDP's state dicts name what the optimizer indexes
        resumed = optimizer.state_dict() if optimizer.state else None  # a resumed run's, loaded whole
        if self.strategy != "ddp":  # from here each rank holds a shard: fsdp's is restored below, DeepSpeed's lost
            optimizer.state.clear()
        self._prepared, optimizer = self.accelerator.prepare(wrapped, optimizer)
        if resumed is not None and self.strategy == "fsdp":
            scatter_full(self._prepared, _unwrapped(optimizer), resumed, self._names)
        device = self.accelerator.device
        return (lambda batch: self._prepared(**{k: v.to(device) for k, v in batch.items()})), optimizer

    def backward(self, loss: torch.Tensor) -> None:
        """Backward pass; under a launcher accelerate's, which averages the gradients over the ranks."""
        if self.accelerator:
            self.accelerator.backward(loss)
        else:
            loss.backward()

    def clip(self, parameters: Sequence[torch.nn.Parameter], max_norm: float) -> None:
        """Clip the (already averaged) gradients to `max_norm`."""
        if self.accelerator:
            self.accelerator.clip_grad_norm_(parameters, max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(parameters, max_norm)

    def step_loss(self, loss_sum: torch.Tensor, share: Share) -> float:
        """Mean loss per labelled token of the whole step batch, summed over the ranks' shares."""
        mine = loss_sum.detach() * (1.0 if share.weight else 0.0)
        if self.accelerator:
            mine = self.accelerator.reduce(mine.reshape(1), reduction="sum")
        return mine.item() / max(share.labelled_tokens, 1)

    def adapter_state(self, model: torch.nn.Module, read: Callable[..., dict[str, torch.Tensor]]) -> dict | None:
        """The adapter's weights on rank 0 (None elsewhere); sharded strategies gather them from every rank first."""
        if self.accelerator and self.strategy in SHARDED:
            whole = self.accelerator.get_state_dict(self._prepared)  # a collective: every rank calls it
            if not self.is_main:
                return None
            from peft import get_peft_model_state_dict

            # keep only the LoRA tensors of the gathered whole model (peft's adapter keys), not the base weights
            self._gathered = {k.removeprefix("model."): v.cpu() for k, v in whole.items() if "lora_" in k}
            return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(model, self._gathered).items()}
        return read(model) if self.is_main else None

    def save_adapter(self, model: Any, folder: Path) -> None:
        """Save the adapter the peft way; under sharded strategies the weights gathered at the last checkpoint."""
        model.save_pretrained(str(folder), **({"state_dict": self._gathered} if self._gathered is not None else {}))

    @property
    def restarts_optimizer(self) -> bool:
        """Whether AdamW's state is lost across checkpoints: under DeepSpeed, whose ZeRO partitions pixiu does not
        gather (its checkpoints hold none, and a resumed state is dropped when DeepSpeed takes the optimizer)."""
        return self.accelerator is not None and self.strategy.startswith("deepspeed")

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict | None:
        """The optimizer's whole state for a checkpoint, in the one-process form, on rank 0 (None elsewhere).

        Under fsdp it is gathered from every rank's shard, so every rank must call this; under DeepSpeed it is
        None (see `restarts_optimizer`).
        """
        if self.accelerator and self.strategy == "fsdp":
            return gather_full(self._prepared, _unwrapped(optimizer), self._names)
        if self.restarts_optimizer or not self.is_main:
            return None
        return optimizer.state_dict()


def _unwrapped(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's `AcceleratedOptimizer` (the one torch's state-dict API reads)."""
    return getattr(optimizer, "optimizer", optimizer)
