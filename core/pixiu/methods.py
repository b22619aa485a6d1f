"""Tuning methods (`lora.method`): which peft config each one is, what it trains with, how its result is saved and
served. peft does the work; this module only picks and checks.

The LoRA family (lora, rslora, loraplus, and pissa / olora once converted to a plain LoRA on the original base)
is served per row by `pixiu.serve.multi_lora`; dora, ia3, adalora, prefix and prompt tuning are served one adapter
per forward pass through peft (`pixiu.serve.single_adapter`), and dora, ia3 and adalora can also be merged into the
base; full and freeze tuning write a whole model folder that is served as the base itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pixiu.errors import PixiuError

if TYPE_CHECKING:
    import torch
    from peft import PeftConfig

    from pixiu.config import LoraArgs

PER_ROW = ("lora", "rslora", "loraplus", "pissa", "olora")
"""Methods whose saved adapter is a plain LoRA: the per-row serving engine serves them in a mixed batch."""
MERGE_TO_SERVE = ("dora", "ia3", "adalora")
"""Methods whose adapter `pixiu adapters merge` folds into the base, which `pixiu serve --base` then serves (they are
also served unmerged, see `SERVED_SINGLE`)."""
PROMPT_LEARNING = ("prefix", "prompt")
"""Methods that learn virtual tokens: nothing to merge; evaluated and served through peft."""
SERVED_SINGLE = (*MERGE_TO_SERVE, *PROMPT_LEARNING)
"""Methods `pixiu serve` serves one adapter per forward pass through peft's own code (`pixiu.serve.single_adapter`):
their maths is not a low-rank term the per-row engine could add row by row."""
WHOLE_MODEL = ("full", "freeze")
"""Methods that train the base's own weights and save a whole model folder."""
CONVERTED = ("pissa", "olora")
"""Methods that rewrite the base's weights at the start and save their adapter converted back to a plain LoRA."""
SFT_ONLY = ("pissa", "olora", "adalora", *PROMPT_LEARNING, *WHOLE_MODEL)
"""Methods trained with `train.method: sft` only: the other objectives' reference passes switch the adapter off
(pissa/olora would leave a rewritten base, full/freeze have no adapter), read hidden states a prefix shifts,
or lack AdaLoRA's per-step rank allocation."""
SHARDABLE = ("lora", "rslora", "dora", "loraplus")
"""Methods whose weights the sharded strategies (fsdp, deepspeed) gather (they gather LoRA matrices only)."""
INITIAL_ADAPTER = "initial_adapter"
"""The subfolder of a pissa/olora run that keeps the adapter as initialised, which its saved adapter is
converted against (peft's `path_initial_model_for_weight_conversion`)."""


def method_problems(
    method: str,
    *,
    objective: str,
    quantize: str | None,
    precision: str,
    devices: int,
    strategy: str,
    init_adapter: str | None,
    r: int,
    target_r: int,
) -> list[str]:
    """What in a run's config `method` cannot train with, each with what to do; empty when it can."""
    problems = []
    if objective != "sft" and method in SFT_ONLY:
        problems.append(
            f"lora.method={method} trains with train.method=sft only; for train.method={objective} use lora.method "
            "lora, rslora, dora, loraplus or ia3"
        )
    if quantize and method in (*WHOLE_MODEL, *CONVERTED):
        what = "trains the base's own weights" if method in WHOLE_MODEL else "rewrites the base's weights"
        problems.append(
            f"lora.method={method} {what}, which lora.quantize={quantize} keeps frozen in {quantize}; "
            "drop lora.quantize, or use lora.method=lora"
        )
    if method in WHOLE_MODEL and precision == "fp16":
        problems.append(
            f"lora.method={method} trains the base's weights in train.precision, and fp16 weights cannot take the "
            "gradient scaler's updates; use train.precision fp32 or bf16"
        )
    if method in WHOLE_MODEL and init_adapter:
        problems.append(
            f"lora.method={method} trains the base itself, not an adapter; drop train.init_adapter "
            "(pass the model folder you start from as --base instead)"
        )
    if devices > 1 and strategy != "ddp" and method not in SHARDABLE:
        problems.append(
            f"train.strategy={strategy} gathers LoRA matrices only, not lora.method={method}'s weights; "
            f"use --strategy ddp, or lora.method {', '.join(SHARDABLE)}"
        )
    if method == "adalora" and target_r > r:
        problems.append(f"lora.adalora_target_r ({target_r}) must be <= lora.r ({r}), the rank AdaLoRA starts from")
    return problems


def peft_config(
    lora: LoraArgs, total_steps: int, target_modules: list[str], model_type: str = "", task: str = "CAUSAL_LM"
) -> PeftConfig:
    """The peft config of `lora.method` (not full or freeze), from the `lora` section, on `target_modules` (the
    layer names `lora.target_modules` resolves to, `pixiu.families.lora_targets`); AdaLoRA's budget schedule
    spans `total_steps` (peft's `total_step`); IA3 takes its layers from the base's `model_type`; `task` is peft's
    task type (`pixiu.seq2seq.peft_task`)."""
    from peft import AdaLoraConfig, IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig

    from pixiu.families import ia3_modules

    method = lora.method
    if method == "ia3":  # peft's per-architecture target and feed-forward modules, or pixiu's where peft has none
        return IA3Config(task_type=task, **ia3_modules(model_type))
    if method == "prefix":
        return PrefixTuningConfig(num_virtual_tokens=lora.num_virtual_tokens, task_type=task)
    if method == "prompt":
        return PromptTuningConfig(num_virtual_tokens=lora.num_virtual_tokens, task_type=task)
    shared: dict[str, Any] = {
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": target_modules,
        "task_type": task,
    }
    if method == "adalora":  # warm up a tenth of the run at full rank, prune, hold the last fifth fixed
        return AdaLoraConfig(
            init_r=lora.r,
            target_r=lora.adalora_target_r,
            total_step=total_steps,
            tinit=total_steps // 10,
            tfinal=total_steps // 5,
            deltaT=max(1, total_steps // 20),
            **shared,
        )
    return LoraConfig(
        r=lora.r,
        use_dora=method == "dora",
        use_rslora=method == "rslora",
        init_lora_weights={"pissa": "pissa", "olora": "olora"}.get(method, True),  # type: ignore[arg-type]
        **shared,
    )


def attach_method(base: torch.nn.Module, lora: LoraArgs, total_steps: int) -> Any:
    """`base` readied to train by `lora.method`: wrapped in its fresh peft adapter, or (full, freeze) with its own
    weights made trainable and returned as it is."""
    if lora.method in WHOLE_MODEL:
        unfreeze(base, None if lora.method == "full" else lora.freeze_layers)
        return base
    from peft import get_peft_model

    from pixiu.families import lora_targets
    from pixiu.lora import _peft_quietly
    from pixiu.seq2seq import peft_task

    model_type = getattr(getattr(base, "config", None), "model_type", "")
    if lora.method == "ia3":
        from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_IA3

        from pixiu.families import IA3_MODULES

        if model_type not in PEFT_IA3 and model_type not in IA3_MODULES:
            raise PixiuError(
                f"lora.method=ia3 adapts the layers peft or pixiu list per architecture, and neither lists model_type "
                f"{model_type!r}; use lora.method lora, rslora, dora or adalora on this base"
            )
    config = peft_config(lora, total_steps, lora_targets(base, lora.target_modules), model_type, peft_task(base))
    with _peft_quietly():
        return get_peft_model(base, config)


def unfreeze(model: torch.nn.Module, last_layers: int | None) -> None:
    """Make every weight of `model` trainable (None), or only those of its last `last_layers` decoder layers (the
    longest `nn.ModuleList` in it), as LLaMA-Factory's freeze tuning does."""
    import torch

    if last_layers is None:
        model.requires_grad_(True)
        return
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise PixiuError(f"{type(model).__name__} has no list of decoder layers to freeze-tune; use lora.method=full")
    layers = max(lists, key=len)
    if last_layers > len(layers):
        raise PixiuError(
            f"lora.freeze_layers={last_layers} but the model has {len(layers)} decoder layers; give at most "
            f"{len(layers)}, or use lora.method=full"
        )
    model.requires_grad_(False)
    for layer in layers[len(layers) - last_layers :]:
        layer.requires_grad_(True)


def keep_initial_adapter(model: Any, run_dir: Path, method: str) -> None:
    """For pissa/olora, save the adapter as initialised (once: a resumed run re-initialises to the same one), which
    `save_tuned` converts the trained adapter against."""
    folder = Path(run_dir) / INITIAL_ADAPTER
    if method in CONVERTED and not (folder / "adapter_model.safetensors").is_file():
        model.peft_config["default"].init_lora_weights = True  # loaded back as saved, not initialised again
        model.save_pretrained(str(folder))


def save_tuned(model: Any, run_dir: Path, tokenizer: Any, method: str) -> None:
    """Save what `method` trained into `run_dir`: a whole model folder (with its tokenizer) for full/freeze, the
    adapter converted to a plain LoRA on the original base for pissa/olora, else peft's adapter files."""
    if method in WHOLE_MODEL:
        model.save_pretrained(str(run_dir))
        tokenizer.save_pretrained(str(run_dir))
    elif method in CONVERTED:
        model.save_pretrained(str(run_dir), path_initial_model_for_weight_conversion=str(run_dir / INITIAL_ADAPTER))
    else:
        model.save_pretrained(str(run_dir))


def keeps_raw_state(model: Any) -> bool:
    """Whether a checkpoint keeps `model`'s trainable weights as they are rather than peft's adapter state: a plain
    model (full/freeze tuning); AdaLoRA, whose peft state is cut to the ranks kept so far and would reshape the
    live model (and the optimiser's hold on it) when loaded back; prefix/prompt tuning, whose peft state peft
    loads beside the model's own keys."""
    config = getattr(model, "active_peft_config", None)
    return config is None or config.peft_type == "ADALORA" or config.is_prompt_learning


def allocate_ranks(model: Any, step: int) -> None:
    """AdaLoRA's per-step rank allocation (peft's `update_and_allocate`), after the optimiser step and before the
    gradients are zeroed; nothing for the other methods."""
    if hasattr(getattr(model, "base_model", None), "rankallocator"):
        model.base_model.update_and_allocate(step)


def method_state(model: Any) -> dict[str, Any]:
    """What a checkpoint keeps beside the weights for the method to resume exactly: AdaLoRA's importance averages
    and rank pattern; empty for the other methods."""
    allocator = getattr(getattr(model, "base_model", None), "rankallocator", None)
    if allocator is None:
        return {}
    averages = {name: dict(getattr(allocator, name)) for name in ("ipt", "exp_avg_ipt", "exp_avg_unc")}
    return {"adalora": {**averages, "rank_pattern": model.peft_config["default"].rank_pattern}}


def restore_method_state(model: Any, state: dict[str, Any]) -> None:
    """Put back what `method_state` saved."""
    saved = state.get("adalora")
    allocator = getattr(getattr(model, "base_model", None), "rankallocator", None)
    if saved is None or allocator is None:
        return
    for name in ("ipt", "exp_avg_ipt", "exp_avg_unc"):
        setattr(allocator, name, dict(saved[name]))
    model.peft_config["default"].rank_pattern = saved["rank_pattern"]


def eval_variants(method: str) -> tuple[str, ...]:
    """The variants a run's own evaluation scores: the in-memory base of pissa/olora is rewritten and full/freeze
    have no adapter to switch off, so those score the tuned model alone."""
    return ("adapter",) if method in (*CONVERTED, *WHOLE_MODEL) else ("base", "adapter")


def adapter_method(folder: Path) -> str:
    """The `lora.method` a run or adapter folder was trained with: its `pixiu_run.yaml`, else read off peft's
    adapter_config.json; "full" for a whole model folder."""
    from pixiu.runs import read_run_file

    folder = Path(folder)
    recorded = (read_run_file(folder).get("config") or {}).get("lora", {}).get("method")
    if isinstance(recorded, str):
        return recorded
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        return "full" if (folder / "config.json").is_file() else "lora"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    peft_type = str(config.get("peft_type", "LORA")).lower()
    names = {"prefix_tuning": "prefix", "prompt_tuning": "prompt"}
    if peft_type != "lora":
        return names.get(peft_type, peft_type)
    if config.get("use_dora"):
        return "dora"
    return "rslora" if config.get("use_rslora") else "lora"


def serving(folder: Path) -> str:
    """How `pixiu serve` serves the adapter (or whole model) in `folder`: "per_row" (in the mixed batch), "single"
    (one adapter per forward pass, through peft: the methods of `SERVED_SINGLE`, and a LoRA that also trains
    embedding rows, `trainable_token_indices`, which rows sharing one embedding table cannot route), "base" (a whole
    model, served as --base) or "no" (not at all)."""
    method = adapter_method(folder)
    if method in PER_ROW:
        config_file = Path(folder) / "adapter_config.json"
        config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
        return "single" if config.get("trainable_token_indices") else "per_row"
    if method in SERVED_SINGLE:
        return "single"
    return "base" if method in WHOLE_MODEL else "no"


def serving_refusal(folder: Path, name: str) -> str | None:
    """Why `pixiu serve` cannot load the folder `folder` as the adapter `name`, and what to do instead; None for an
    adapter it serves (per row or through peft, see `serving`)."""
    method = adapter_method(folder)
    how = serving(folder)
    if how == "base":
        return (
            f"{folder} holds a whole model (lora.method={method}), not an adapter: serve it as the base model "
            f"with: pixiu serve --base {folder}"
        )
    if how == "no":
        return (
            f"adapter {name} ({folder}) is a peft {method} adapter; pixiu serve serves lora.method "
            f"{', '.join((*PER_ROW, *SERVED_SINGLE))} only: train one of those, or merge it into its base with peft"
        )
    from pixiu.reward_model import is_reward_model

    if how == "single" and is_reward_model(Path(folder)):
        return (
            f"reward model {name} ({folder}) is served through peft (lora.method={method}, or embedding rows it "
            "trains), but reward models score per row only: train it again with lora.method=lora and no new tokens"
        )
    return None
