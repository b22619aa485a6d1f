"""AdamW's state in a checkpoint, whole, whatever the strategy that wrote it or the one that resumes it.

A checkpoint keeps the optimizer's state in the one-process form, `optimizer.state_dict()` keyed by each
parameter's index in the param groups. Under FSDP each rank holds a shard of it: torch's
`torch.distributed.checkpoint.state_dict` gathers the full state keyed by parameter names (rank 0 keeps a CPU
copy), and scatters such a state back into the shards. This module converts between the two keyings, so a
checkpoint written by FSDP on N ranks resumes on one process, under DDP, or under FSDP on M ranks, and the other
way round.
"""

from __future__ import annotations

from typing import Any, cast

import torch

from pixiu.errors import PixiuError

State = dict[str, Any]
"""An optimizer state dict: {"state": {key: {"step", "exp_avg", ...}}, "param_groups": [{..., "params": [key]}]}."""


def parameter_names(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """The name in `module` of each parameter `optimizer` steps, in param-group order: name i is state index i."""
    names = {id(p): name for name, p in module.named_parameters()}
    return [names[id(p)] for group in optimizer.param_groups for p in group["params"]]


def by_index(full: State, names: list[str]) -> State:
    """A state keyed by parameter names (torch's full state dict) in the one-process form, keyed by the index of
    each name in `names` (`parameter_names` of the optimizer; the order torch lists a group's names in is not
    relied on)."""
    index = {name: i for i, name in enumerate(names)}
    return {
        "state": {index[name]: value for name, value in full["state"].items()},
        "param_groups": [
            {**group, "params": sorted(index[n] for n in group["params"])} for group in full["param_groups"]
        ],
    }


def by_name(state: State, names: list[str]) -> State:
    """A one-process state (keyed by index) keyed by `names` (`parameter_names` of the optimizer it goes into).

    Raises:
        PixiuError: The state steps another number of parameters than `names` holds.
    """
    count = sum(len(group["params"]) for group in state["param_groups"])
    if count != len(names):
        raise PixiuError(
            f"the checkpoint's optimizer state steps {count} parameters, this run's optimizer {len(names)}; "
            "resume with the lora settings the run was started with"
        )
    return {
        "state": {names[i]: value for i, value in state["state"].items()},
        "param_groups": [{**group, "params": [names[i] for i in group["params"]]} for group in state["param_groups"]],
    }


def gather_full(module: torch.nn.Module, optimizer: torch.optim.Optimizer, names: list[str]) -> State | None:
    """The whole state of an FSDP-sharded `optimizer` in the one-process form, on rank 0's CPU (None elsewhere).

    A collective: every rank must call it; `names` is `parameter_names(module, optimizer)` taken before `module`
    was wrapped.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    # every rank receives it (an adapter's AdamW state is small); torch's cpu_offload=True, rank 0 alone, lets
    # a CPU run's gathered moments share one buffer (exp_avg came back equal to exp_avg_sq), so copy it ourselves
    full = cast(State, get_optimizer_state_dict(module, optimizer, options=StateDictOptions(full_state_dict=True)))
    if torch.distributed.get_rank() != 0:
        return None
    moments = {
        name: {k: v.detach().to("cpu", copy=True) if isinstance(v, torch.Tensor) else v for k, v in values.items()}
        for name, values in full["state"].items()
    }
    return by_index({"state": moments, "param_groups": full["param_groups"]}, names)


def scatter_full(module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: State, names: list[str]) -> None:
    """Load a one-process `state` into the FSDP-sharded `optimizer`: each rank keeps its shard of it.

    A collective: every rank must call it with the whole state; `names` is `parameter_names(module, optimizer)`
    taken before `module` was wrapped.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(module, optimizer, by_name(state, names), options=options)
