"""Resumable training checkpoints, written atomically: a crash leaves either the old or the new one, never half.

A checkpoint holds the adapter weights, optimiser, scheduler, every RNG state and the step; the data
position follows from the step because the batch stream is deterministic (`pixiu.data.StepBatches`).
Checkpoints are device-independent: everything loads onto the CPU, and the caller's `load_state_dict`
moves it onto the run's device, so a run started on a GPU resumes on a CPU and the other way round.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pixiu.errors import PixiuError

CHECKPOINTS = "checkpoints"
_PREFIX = "step-"


def save_checkpoint(
    run_dir: Path, step: int, adapter: dict[str, torch.Tensor], state: dict[str, Any], keep: int
) -> Path:
    """Write checkpoint `step` (temp folder, fsync, rename) and prune all but the newest `keep`.

    Temp folders of earlier interrupted writes are removed first (one training at a time writes into a run folder).

    Raises:
        PixiuError: The checkpoint could not be written (a full disk, say); its temp folder is removed and the
            checkpoints written before are kept.
    """
    parent = Path(run_dir) / CHECKPOINTS
    parent.mkdir(parents=True, exist_ok=True)
    for stale in parent.glob(f".{_PREFIX}*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    final = parent / f"{_PREFIX}{step:07d}"
    tmp = parent / f".{final.name}.tmp-{os.getpid()}"
    try:
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in adapter.items()}, str(tmp / "adapter.safetensors"))
        torch.save({**state, "step": step, "rng": _rng_state()}, tmp / "state.pt")
        for name in ("adapter.safetensors", "state.pt"):
            with open(tmp / name, "rb") as handle:
                os.fsync(handle.fileno())
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write as a RuntimeError
        shutil.rmtree(tmp, ignore_errors=True)
        kept = list_checkpoints(run_dir)
        newest = f"the newest one kept is {kept[-1]}" if kept else "none was written before"
        raise PixiuError(
            f"could not write checkpoint step {step} into {parent} ({exc}); free disk space (or fix the folder's "
            f"permissions) and continue the run with --resume: {newest}"
        ) from exc
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temp folders of interrupted writes are ignored)."""
    parent = Path(run_dir) / CHECKPOINTS
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.iterdir() if p.name.startswith(_PREFIX) and (p / "state.pt").is_file())


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint's adapter weights and state onto the CPU, and restore the RNGs it saved."""
    # tensors and plain data only (no pickle code); CUDA tensors of a GPU run land on the CPU
    state = torch.load(Path(path) / "state.pt", weights_only=True, map_location="cpu")
    _set_rng_state(state.pop("rng"))
    return load_file(str(Path(path) / "adapter.safetensors"), device="cpu"), state


def _rng_state() -> dict[str, Any]:
    """Every random-number generator training touches, as tensors and plain data (loadable with weights_only)."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
    state: dict[str, Any] = {
        "python": [version, list(python_state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generators
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(rng: dict[str, Any]) -> None:
    """Restore the generators saved by `_rng_state`."""
    version, python_state, gauss = rng["python"]
    random.setstate((version, tuple(python_state), gauss))
    kind, keys, position, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():  # a GPU run resumed on a CPU has no CUDA generators to set
        torch.cuda.set_rng_state_all(rng["cuda"][: torch.cuda.device_count()])
