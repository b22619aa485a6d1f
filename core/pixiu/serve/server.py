"""Start serving: load the base model once and the adapters to serve, then run the HTTP API with uvicorn."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from pixiu.errors import PixiuError
from pixiu.registry import list_adapters, resolve_adapter
from pixiu.runs import read_run_file
from pixiu.seq2seq import is_encoder_decoder
from pixiu.serve.engine import Engine
from pixiu.serve.guard import Timeouts, uvicorn_config
from pixiu.serve.seq2seq_engine import Seq2SeqEngine

"""What a pixiu training run writes beside its adapter, the domain among it."""


def adapters_to_serve(base: str, named: dict[str, str], *, registry: bool) -> tuple[dict[str, Path], list[str]]:
    """The adapters to load at startup, by name, and notes on registry entries left out.

    Args:
        base: The base model spec being served.
        named: Adapter name -> folder (or registry name), from `--adapter NAME=DIR`.
        registry: Also serve, for every other registered name, its newest adapter trained on `base`.
    """
    folders = {name: resolve_adapter(source) for name, source in named.items()}
    notes = []
    if registry:
        entries = [entry for entry in list_adapters() if entry.name not in folders]  # newest first
        for name in dict.fromkeys(entry.name for entry in entries):
            matching = [entry for entry in entries if entry.name == name and entry.base == base]
            if matching:
                folders[name] = Path(matching[0].path)
            else:
                trained_on = sorted({entry.base for entry in entries if entry.name == name})
                notes.append(f"not serving adapter {name!r}: trained on {', '.join(trained_on)}, not on {base}")
    return folders, notes


def adapter_domain(folder: Path) -> str | None:
    """The domain the adapter in `folder` was trained for, whatever name it is served under.

    The newest registry entry for that folder says, else the folder's `pixiu_run.yaml`; None when neither
    does (an adapter not made by pixiu): `process_response` then gets `domain=None`.
    """
    folder = Path(folder).resolve()
    for entry in list_adapters():  # newest first
        if Path(entry.path).resolve() == folder:
            return entry.domain
    domain = read_run_file(folder).get("domain")
    return domain if isinstance(domain, str) else None


def recorded_base(folder: Path) -> str | None:
    """The base model the adapter in `folder` was trained on, as its files say: `pixiu_run.yaml`'s `base_model`,
    else peft's `base_model_name_or_path` in `adapter_config.json`; None when neither records one."""
    base = read_run_file(folder).get("base_model")
    if isinstance(base, str):
        return base
    config_file = Path(folder) / "adapter_config.json"
    if config_file.is_file():
        try:
            recorded = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except (ValueError, AttributeError):
            return None
        return recorded if isinstance(recorded, str) and recorded else None
    return None


def check_base(folder: Path, base: str, loaded_from: str | None, *, force: bool, how: str) -> None:
    """Refuse an adapter recorded as trained on another base than `base` (loaded from `loaded_from`) unless `force`.

    Same-shaped bases load each other's adapters without any error and answer nonsense, so the recorded
    base is checked; `how` tells the user how to force it (e.g. "--force").
    """
    recorded = recorded_base(folder)
    if force or recorded is None or _names(recorded) & (_names(base) | _names(loaded_from)):
        return
    raise PixiuError(
        f"the adapter in {folder} was trained on {recorded}, but this server serves {base}; "
        f"serve it on its own base, or {how} to load it anyway"
    )


def _names(model: str | None) -> set[str]:
    """The ways to write a base model: its spec and, for a local folder, its resolved path."""
    if not model:
        return set()
    path = Path(model).expanduser()
    return {model, str(path.resolve())} if path.exists() else {model}


def start_engine(
    base: str,
    adapters: dict[str, Path],
    *,
    max_batch: int,
    max_waiting: int,
    max_adapters: int | None = None,
    prefill_chunk: int = 512,
    force: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | None = None,
) -> tuple[Engine, object]:
    """Load `base` in `dtype` on `device` and `adapters` (each with its domain, read to the same dtype and device),
    start the engine thread, and return (engine, tokenizer).

    An adapter recorded as trained on another base is refused unless `force` (see `check_base`).
    """
    from pixiu.generate import stop_token_ids
    from pixiu.models import base_config, load_base
    from pixiu.serve import kv

    config = base_config(base)
    kv.new_cache(config)  # refuse a cache the engine cannot batch before loading any weights
    model, tokenizer = load_base(base, dtype=dtype, device=device)
    engine_class = Seq2SeqEngine if is_encoder_decoder(config) else Engine  # T5: encoder once, decoder per step
    engine = engine_class(
        model,
        stop_token_ids(tokenizer, model),
        max_batch=max_batch,
        max_waiting=max_waiting,
        max_adapters=max_adapters,
        prefill_chunk=prefill_chunk,
    )
    for name, folder in adapters.items():
        check_base(folder, base, model.name_or_path, force=force, how="pass --force")
        engine.load_adapter(name, folder, domain=adapter_domain(folder))
    return engine.start(), tokenizer


def served_as(engine: Engine) -> str:
    """The loaded adapters and how each is served, for the startup line: "law (per_row), law-dora (single)"."""
    return ", ".join(f"{name} ({info.served})" for name, info in engine.adapters.loaded().items())


def context_length(engine: Engine) -> int:
    """The model's context window in tokens."""
    return int(getattr(engine.model.config, "max_position_embeddings", 2048))


BACKGROUND_TIMEOUTS = Timeouts(shutdown=5)
"""A background server (tests, benches) gives open streams 5 s to end when it stops."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of `host` that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextmanager
def background_server(
    app, host: str = "127.0.0.1", timeout: float = 30.0, timeouts: Timeouts = BACKGROUND_TIMEOUTS
) -> Iterator[str]:
    """Run `app` with uvicorn on a free port of `host` in a thread; yields its base URL and stops it afterwards."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn_config(app, host=host, timeouts=timeouts, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pixiu-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise PixiuError(f"the local server did not start within {timeout:.0f} s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
