"""One rank of a real 2-process FSDP run on the CPU (gloo), through pixiu's `Ranks`; and the one-process steps it
must match.

accelerate runs FSDP only on GPUs (on the CPU it falls back to plain data parallelism), so `Wrapper` stands in
for accelerate's `Accelerator`: its `prepare` wraps the module in torch's FSDP as the shipped fsdp.yaml asks
(FULL_SHARD, use_orig_params, one unit per decoder layer). Everything else is pixiu's own code.

Run with: python -m torch.distributed.run --nproc_per_node 2 tests/fsdp_child.py BASE REFERENCE OUT
It trains 2 steps from a fresh adapter, then, on a second adapter, resumes REFERENCE (a one-process checkpoint of
step 2) and trains step 3; rank 0 saves both gathered states to OUT.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from pixiu.lora import adapter_state, attach_lora, restore_adapter_state
from pixiu.loss import labelled_loss
from pixiu.models import load_base

LR = 1e-2


def fresh_adapter(base_dir: str) -> tuple[Any, torch.optim.Optimizer]:
    """The tiny base with a LoRA adapter whose B matrices are non-zero (so step 1 has gradients everywhere), and
    AdamW over it; the same on every process."""
    torch.manual_seed(0)
    model = attach_lora(load_base(base_dir)[0], r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    for name, weight in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(weight, std=0.02)
    model.train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR, weight_decay=0.01)


def batch(step: int) -> dict[str, torch.Tensor]:
    """Step `step`'s batch: 2 rows of 12 token ids, every token a label."""
    ids = torch.randint(0, 100, (2, 12), generator=torch.Generator().manual_seed(step))
    return {"input_ids": ids, "labels": ids.clone()}


def train(step_loss: Any, optimizer: torch.optim.Optimizer, steps: range) -> None:
    """AdamW steps on `batch(step)` for each step (each rank computes the whole batch, so FSDP's average of the
    ranks' gradients is the one-process gradient)."""
    for step in steps:
        step_loss(batch(step)).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


class Wrapper:
    """The part of accelerate's `Accelerator` that `Ranks` uses under fsdp, with torch's FSDP on gloo."""

    def __init__(self) -> None:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        self.num_processes = dist.get_world_size()
        self.is_main_process = dist.get_rank() == 0
        self.device = torch.device("cpu")
        self.state = type("State", (), {"deepspeed_plugin": None})()

    def prepare(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        """Wrap `module` as accelerate does under the shipped fsdp.yaml; the optimizer keeps the same parameters."""
        from accelerate.utils.dataclasses import get_module_class_from_name
        from torch.distributed.fsdp import FullyShardedDataParallel, ShardingStrategy
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        layers = {get_module_class_from_name(module, name) for name in module._no_split_modules}
        wrapped = FullyShardedDataParallel(
            module,
            sharding_strategy=ShardingStrategy.FULL_SHARD,
            auto_wrap_policy=ModuleWrapPolicy(layers),
            use_orig_params=True,
            device_id=self.device,
        )
        return wrapped, optimizer

    def get_state_dict(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's weights, gathered from the shards (accelerate's FULL_STATE_DICT)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True))


def main() -> None:
    """Train a fresh adapter 2 steps, then resume the one-process step-2 checkpoint for step 3, on every rank."""
    from pixiu.distributed import Ranks

    base_dir, reference, out = sys.argv[1:4]
    accelerator = Wrapper()
    saved = {}
    for phase, steps in (("fresh", range(2)), ("resumed", range(2, 3))):
        model, optimizer = fresh_adapter(base_dir)
        if phase == "resumed":  # what resume_training does before the run is prepared
            checkpoint = torch.load(reference, weights_only=True)
            restore_adapter_state(model, checkpoint["adapter"])
            optimizer.load_state_dict(checkpoint["optimizer"])
        ranks = Ranks(accelerator, "fsdp")
        step_loss, prepared = ranks.prepare(model, optimizer, labelled_loss)
        train(step_loss, prepared, steps)
        weights = ranks.adapter_state(model, adapter_state)
        saved[phase] = {"adapter": weights, "optimizer": ranks.optimizer_state(prepared)}
    if accelerator.is_main_process:
        torch.save(saved, out)


if __name__ == "__main__":
    main()
