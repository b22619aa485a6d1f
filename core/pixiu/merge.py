"""Merge a LoRA adapter into its base model: one plain Hugging Face folder that any engine loads without peft."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import torch

from pixiu.errors import PixiuError


def merge_adapter(adapter: Path, output: Path, *, base: str, dtype: torch.dtype = torch.float32) -> Path:
    """Write `base` with the adapter in `adapter` merged into its weights (peft's `merge_and_unload`) to `output`.

    The folder gets the weights, config.json, generation_config.json and the tokenizer (chat template included);
    it is written beside `output` and moved into place only when complete.

    Args:
        adapter: A peft LoRA adapter folder.
        output: Where the merged model goes; it must not exist, or be an empty folder.
        base: The base model spec the adapter was trained on (see `pixiu.models.resolve_base`).
        dtype: The dtype the base is loaded, merged and saved in.

    Raises:
        PixiuError: `output` is a file or a non-empty folder, or `adapter` is not an adapter folder.
    """
    from peft import PeftModel

    from pixiu.methods import PROMPT_LEARNING, WHOLE_MODEL, adapter_method
    from pixiu.models import load_base

    method = adapter_method(Path(adapter))
    if method in WHOLE_MODEL:
        raise PixiuError(f"{adapter} is already a whole model (lora.method={method}); serve it with --base {adapter}")
    if method in PROMPT_LEARNING:
        raise PixiuError(
            f"{adapter} was trained with lora.method={method}: its virtual tokens have no weights to merge into the "
            "base; serve it unmerged (pixiu serve --adapter NAME=FOLDER serves it through peft), or train a "
            "LoRA-family method to merge"
        )
    output = Path(output).expanduser()
    if output.is_file() or (output.is_dir() and any(output.iterdir())):
        raise PixiuError(f"--output {output} already exists and is not empty; pick a new folder or empty it first")
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise PixiuError(f"{adapter} is not a LoRA adapter folder (no adapter_config.json)")
    model, tokenizer = load_base(base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if output.is_dir():
            output.rmdir()  # empty, checked above
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output
