"""Hand-off to vLLM: check that pixiu's adapters load there unchanged, and build the `vllm serve` command line.

What vLLM reads of a peft adapter (vllm/lora/peft_helper.py, lora/utils.py, lora/models.py): adapter_config.json's
`r`, `lora_alpha` and `target_modules` (all three required), `use_rslora`, and it refuses `use_dora`,
`modules_to_save` and a bias; in adapter_model.safetensors every key must be
`base_model.model.<module path>.lora_A.weight` / `.lora_B.weight` (or an embedding LoRA), and the rank must not
exceed `--max-lora-rank`, which takes only the values in `VLLM_LORA_RANKS`. vLLM scales every module by
`lora_alpha / r` from the config (it ignores `rank_pattern` / `alpha_pattern`), so per-module ranks would load and
answer wrongly: they are refused too.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

from safetensors import safe_open

from pixiu.errors import PixiuError
from pixiu.serve.multi_lora import adapter_files

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for `--max-lora-rank`."""
INSTALL = "pip install 'pixiu[vllm]' (vLLM runs on Linux with an NVIDIA GPU and CUDA)"
_PREFIX = "base_model.model."
_REQUIRED = ("r", "lora_alpha", "target_modules")
_PRECISIONS = {"auto": "auto", "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def check_adapter_for_vllm(folder: Path) -> int:
    """Return the LoRA rank of the adapter in `folder`; raise a `PixiuError` listing all that vLLM would refuse."""
    config, weights_file = adapter_files(folder, "vLLM")
    problems = [f"adapter_config.json has no {key!r}" for key in _REQUIRED if key not in config]
    if config.get("peft_type", "LORA") != "LORA":
        problems.append(f"peft_type is {config['peft_type']!r}, vLLM serves LORA only")
    if config.get("use_dora"):
        problems.append("use_dora is true: vLLM does not support DoRA")
    if config.get("modules_to_save"):
        problems.append(f"modules_to_save is {config['modules_to_save']!r}: vLLM needs it empty")
    if config.get("bias", "none") != "none":
        problems.append(f"bias is {config['bias']!r}: vLLM loads LoRA adapters without biases only ('none')")
    for key in ("rank_pattern", "alpha_pattern"):
        if config.get(key):
            problems.append(f"{key} is set: vLLM scales every module by lora_alpha / r and would answer wrongly")
    rank = config.get("r")
    if isinstance(rank, int) and rank > VLLM_LORA_RANKS[-1]:
        problems.append(f"r is {rank}: vLLM serves ranks up to {VLLM_LORA_RANKS[-1]}")
    with safe_open(str(weights_file), framework="pt") as weights:
        for key in weights.keys():  # noqa: SIM118 (safe_open is not a dict)
            problem = _key_problem(key, weights.get_slice(key).get_shape(), rank)
            if problem:
                problems.append(problem)
    if problems:
        listed = "\n  - ".join(problems)
        msg = (
            f"vLLM would refuse the adapter in {folder}:\n  - {listed}\nRetrain it as a plain LoRA adapter, or serve "
            "it with --engine pixiu (which serves dora, ia3, adalora, prefix and prompt adapters through peft)"
        )
        raise PixiuError(msg)
    return int(config["r"])  # present: its absence is one of the problems above


def _key_problem(key: str, shape: list[int], rank: object) -> str | None:
    """What vLLM refuses in one weight key of adapter_model.safetensors (and its shape), or None."""
    if not key.startswith(_PREFIX):
        return f"weight {key!r} does not start with {_PREFIX!r}"
    parts = key.split(".")
    if parts[-1] in ("lora_embedding_A", "lora_embedding_B"):
        return None
    if parts[-1] != "weight" or parts[-2] not in ("lora_A", "lora_B"):
        return f"weight {key!r} is not a LoRA matrix named <module>.lora_A.weight or <module>.lora_B.weight"
    own_rank = shape[0] if parts[-2] == "lora_A" else shape[-1]
    if len(shape) != 2 or (isinstance(rank, int) and own_rank != rank):
        return f"weight {key!r} has shape {tuple(shape)}, not rank r={rank}"
    return None


def max_lora_rank(ranks: list[int]) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds every rank in `ranks`."""
    largest = max(ranks, default=1)
    for allowed in VLLM_LORA_RANKS:
        if allowed >= largest:
            return allowed
    raise PixiuError(f"LoRA rank {largest} is over vLLM's largest --max-lora-rank, {VLLM_LORA_RANKS[-1]}")


def vllm_command(
    base_folder: str,
    adapters: dict[str, Path],
    ranks: list[int],
    *,
    host: str,
    port: int,
    precision: str = "auto",
    max_batch: int = 32,
    extra: tuple[str, ...] = (),
) -> list[str]:
    """The `vllm serve` command line serving `base_folder` as model "base" and each adapter under its name.

    Args:
        base_folder: The base model as a local folder or hub id (already resolved by `pixiu.models.resolve_base`).
        adapters: Served name -> adapter folder.
        ranks: The adapters' LoRA ranks (from `check_adapter_for_vllm`), for `--max-lora-rank`.
        host: Interface vLLM listens on.
        port: Its TCP port.
        precision: pixiu's `--precision` (auto, fp32, bf16, fp16), passed on as vLLM's `--dtype`.
        max_batch: Sequences vLLM runs at once (`--max-num-seqs`).
        extra: More vLLM options, appended as given.
    """
    command = ["vllm", "serve", base_folder, "--served-model-name", "base", "--host", host, "--port", str(port)]
    command += ["--dtype", _PRECISIONS[precision], "--max-num-seqs", str(max_batch)]
    if adapters:
        command += ["--enable-lora", "--max-loras", str(len(adapters)), "--max-lora-rank", str(max_lora_rank(ranks))]
        command += ["--lora-modules", *(f"{name}={Path(folder).resolve()}" for name, folder in adapters.items())]
    return [*command, *extra]


def require_vllm() -> str:
    """The `vllm` executable; a `PixiuError` saying how to install vLLM when it is not there."""
    executable = shutil.which("vllm")
    if importlib.util.find_spec("vllm") is None or executable is None:
        raise PixiuError(f"`pixiu serve --engine vllm` needs vLLM, which is not installed: {INSTALL}")
    return executable


def start_vllm(command: list[str], url: str, *, env: dict[str, str] | None = None, timeout: float = 900.0):
    """Start `command` (from `vllm_command`) and wait until `url`/health answers; returns the running process.

    Raises:
        PixiuError: vLLM exited while starting (its own log, on stderr, says why) or was not up within `timeout`.
    """
    import httpx

    process = subprocess.Popen(command, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PixiuError(f"vLLM exited with status {process.returncode} while starting; its log above says why")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(1)
    stop_vllm(process)
    raise PixiuError(f"vLLM did not answer at {url}/health within {timeout:.0f} s; see its log above")


def stop_vllm(process: subprocess.Popen) -> None:
    """Ask vLLM to exit, and kill it after 30 s."""
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
