"""Where and in which number format a model runs: `--device` and `--precision` resolved, checked, and measured.

Every check here runs before any weights are loaded, so a wrong choice fails in a second with what to do,
not after minutes of loading.
"""

from __future__ import annotations

import re
import resource
import sys
from typing import Literal

import torch

from pixiu.errors import PixiuError

DeviceSpec = str
"""`auto`, `cpu`, `cuda`, `cuda:N` or `mps`."""
Precision = Literal["auto", "fp32", "bf16", "fp16"]

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_spec(spec: str) -> str:
    """Return `spec` when it names a device kind pixiu knows; raise ValueError naming the accepted forms."""
    if not _DEVICE.match(spec):
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda, cuda:N (N counts from 0) or mps")
    return spec


def resolve_device(spec: DeviceSpec = "auto") -> torch.device:
    """The torch device for `spec`: `auto` is the first CUDA device when there is one, else the CPU.

    Raises:
        PixiuError: The device is not there (no CUDA in this torch build or machine, `cuda:N` past the last
            device, no MPS).
    """
    check_device_spec(spec)
    if spec == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not torch.backends.mps.is_available():
            raise PixiuError("--device mps: this machine has no usable Apple GPU (MPS); use --device cpu or auto")
        return torch.device("mps")
    if not torch.cuda.is_available():
        build = "this torch is a CPU-only build" if torch.version.cuda is None else "no CUDA device is visible"
        raise PixiuError(
            f"--device {spec}: {build}. Install a CUDA build of torch on a machine with an NVIDIA GPU "
            "(and check CUDA_VISIBLE_DEVICES), or use --device cpu"
        )
    index = int(spec.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise PixiuError(
            f"--device {spec}: this machine has {count} CUDA device{'s' if count != 1 else ''} "
            f"(cuda:0 to cuda:{count - 1}); pick one of those"
        )
    return torch.device("cuda", index)


def resolve_precision(spec: Precision, device: torch.device) -> torch.dtype:
    """The compute dtype for `spec` on `device`: `auto` is bf16 on GPUs that support it, else fp32.

    Raises:
        PixiuError: bf16 on a GPU without it (before Ampere), or fp16 on the CPU, where it is not a speed-up.
    """
    if spec == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
            return torch.bfloat16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    if spec not in DTYPES:
        raise PixiuError(f"unknown precision {spec!r}; use auto, fp32, bf16 or fp16")
    if spec == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        name = torch.cuda.get_device_name(device)
        raise PixiuError(
            f"--precision bf16: {name} has no bfloat16 support (it needs compute capability 8.0, Ampere, or newer); "
            "use --precision fp16, which trains with a gradient scaler, or fp32"
        )
    if spec == "fp16" and device.type == "cpu":
        raise PixiuError(
            "--precision fp16 on the CPU: most CPU kernels have no fast float16 path and training would be slower "
            "than fp32; use fp32, or bf16 on a CPU with AVX512-BF16 or AMX"
        )
    return DTYPES[spec]


def placement(device: DeviceSpec, precision: Precision) -> tuple[torch.device, torch.dtype]:
    """(torch device, compute dtype) for `--device` and `--precision`, both checked (see the two resolvers)."""
    where = resolve_device(device)
    return where, resolve_precision(precision, where)


def precision_name(dtype: torch.dtype) -> str:
    """`fp32`, `bf16` or `fp16` for a dtype from `resolve_precision`."""
    return next(name for name, known in DTYPES.items() if known == dtype)


def reset_peak_memory(device: torch.device) -> None:
    """Start counting peak memory afresh on a CUDA device (process RSS has no reset: it is the lifetime peak)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict[str, float | str]:
    """Peak memory of this process on `device`: `torch.cuda.max_memory_allocated` on CUDA, peak RSS elsewhere."""
    if device.type == "cuda":
        used, kind = torch.cuda.max_memory_allocated(device), "cuda_max_memory_allocated"
    else:
        # ru_maxrss is KiB on Linux and bytes on macOS
        used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        kind = "peak_rss"
    return {"kind": kind, "gib": round(used / 2**30, 3)}
