"""peft wrappers: attach LoRA adapters to a base model, read and write their weights."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from transformers import PreTrainedModel

from pixiu.families import lora_targets
from pixiu.methods import keeps_raw_state
from pixiu.seq2seq import peft_task


def attach_lora(
    model: torch.nn.Module,
    *,
    r: int,
    alpha: float,
    dropout: float,
    target_modules: list[str],
    new_token_ids: list[int] | None = None,
) -> PeftModel:
    """Wrap `model` with a fresh trainable LoRA adapter named "default" (DoRA off, so it can be served per row).

    `new_token_ids`: embedding rows trained (and saved) with the adapter, through peft's `trainable_token_indices`
    (the tokens `pixiu models extend-vocab` added); a tied output head follows them.
    """
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft annotates int; it scales by any number
        lora_dropout=dropout,
        target_modules=lora_targets(model, target_modules),
        task_type=peft_task(model),
        use_dora=False,
        trainable_token_indices=list(new_token_ids) if new_token_ids else None,
    )
    with _peft_quietly():
        return get_peft_model(model, config)


def load_trainable_adapter(model: torch.nn.Module, adapter_dir: Path) -> PeftModel:
    """Load a saved adapter onto `model` to train it further."""
    with _peft_quietly():
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)


@contextlib.contextmanager
def _peft_quietly() -> Iterator[None]:
    """Silence the FutureWarning peft triggers by still calling a transformers API deprecated for v6."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def enable_gradient_checkpointing(model: PreTrainedModel, every_n_layers: int = 1) -> None:
    """Recompute every `every_n_layers`-th decoder layer's activations in the backward pass (non-reentrant, as peft
    needs); the other layers keep theirs.

    Non-reentrant checkpointing gives the LoRA weights inside a checkpointed layer their gradients even
    though the frozen embeddings' output needs none; input grads are switched on as well for models whose
    layers checkpoint the reentrant way regardless.
    """
    model.activation_checkpointing_enable(
        activation_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=every_n_layers
    )
    model.enable_input_require_grads()


def load_adapter(model: torch.nn.Module, adapter_dir: Path) -> PeftModel:
    """Load a saved adapter onto `model` for inference."""
    with _peft_quietly():
        return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)


REFERENCE_ADAPTER = "reference"
"""The frozen copy of `train.init_adapter` that a run started from an adapter keeps as its reference policy."""


def attach_reference(model: PeftModel, init_folder: Path | None) -> None:
    """Load the adapter the run starts from (`init_folder`, None for a fresh one) once more, frozen, as the
    reference policy: InstructGPT's PPO and DPO hold the policy close to the SFT model it began as."""
    if init_folder is not None:
        with _peft_quietly():
            model.load_adapter(str(init_folder), adapter_name=REFERENCE_ADAPTER, is_trainable=False)


def has_reference(model: PeftModel) -> bool:
    """Whether the run started from an adapter and keeps its frozen copy as the reference (`attach_reference`)."""
    return REFERENCE_ADAPTER in model.peft_config


def reference_active(model: PeftModel) -> contextlib.AbstractContextManager:
    """Run `model` as the reference policy: the frozen start adapter when the run began from one
    (`attach_reference`), else the base itself with the adapter switched off."""
    if has_reference(model):
        return frozen_adapter_active(model, REFERENCE_ADAPTER)
    return model.disable_adapter()


@contextlib.contextmanager
def frozen_adapter_active(model: PeftModel, name: str) -> Iterator[None]:
    """Run `model` with its frozen adapter `name` active (a reward model beside the policy), then make the
    adapter that was active, trainable, active again."""
    trained = model.active_adapter
    model.set_adapter(name, inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(trained)  # peft makes the adapter it activates trainable again, and `name` frozen


def adapter_state(model: PeftModel) -> dict[str, torch.Tensor]:
    """The adapter's weights only (a few MB), as peft saves them, copied onto the CPU; for full/freeze tuning and
    AdaLoRA, the trainable weights as they are in the model (see `pixiu.methods.keeps_raw_state`)."""
    if keeps_raw_state(model):
        return {k: v.detach().to("cpu", copy=True) for k, v in model.named_parameters() if v.requires_grad}
    return {k: v.detach().to("cpu", copy=True) for k, v in get_peft_model_state_dict(model).items()}


def restore_adapter_state(model: PeftModel, state: dict[str, torch.Tensor]) -> None:
    """Put saved adapter weights back into `model`; fails loudly if any key does not match."""
    if keeps_raw_state(model):
        loaded = model.load_state_dict(state, strict=False)
        if loaded.unexpected_keys:
            raise RuntimeError(f"checkpoint has weights the model lacks: {loaded.unexpected_keys[:5]}")
        return
    result = set_peft_model_state_dict(model, state)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint has adapter weights the model lacks: {unexpected[:5]}")
