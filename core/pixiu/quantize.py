"""QLoRA: the frozen base loaded through bitsandbytes in 4 or 8 bits, checked before any weights are read.

`check_quantize` fails fast (no CUDA, bitsandbytes missing); `bnb_config` is the BitsAndBytesConfig that
`load_base` passes to `from_pretrained`; `prepare_quantized` is peft's preparation for k-bit training.
"""

from __future__ import annotations

import importlib.util
from typing import Literal

import torch
from transformers import BitsAndBytesConfig, PreTrainedModel

from pixiu.errors import PixiuError

Quantize = Literal["4bit", "8bit"]


def check_quantize(kind: Quantize, device: torch.device) -> None:
    """Raise PixiuError, before anything is loaded, when `lora.quantize=kind` cannot run on `device`.

    Raises:
        PixiuError: The device is not CUDA (bitsandbytes kernels need an NVIDIA GPU), or bitsandbytes is not
            installed.
    """
    if device.type != "cuda":
        raise PixiuError(
            f"lora.quantize={kind} needs a CUDA GPU (bitsandbytes' kernels run on NVIDIA GPUs), but the run's "
            f"device is {device}; drop lora.quantize (train in bf16/fp32 instead) or run on a machine with CUDA"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise PixiuError(
            f"lora.quantize={kind} needs bitsandbytes, which is not installed; install it with "
            "`pip install 'pixiu[qlora]'`"
        )


def bnb_config(kind: Quantize, compute_dtype: torch.dtype) -> BitsAndBytesConfig:
    """The bitsandbytes config for `kind`: 4bit is NF4 with double quantisation computing in `compute_dtype`;
    8bit is LLM.int8."""
    if kind == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
        )
    if kind == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise PixiuError(f"unknown lora.quantize {kind!r}; use 4bit or 8bit")


def prepare_quantized(model: PreTrainedModel) -> PreTrainedModel:
    """peft's `prepare_model_for_kbit_training`: the base frozen, its norms in fp32; checkpointing is switched on
    as for any base (`pixiu.training.prepare_base`)."""
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
