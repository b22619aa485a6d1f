"""`pixiu serve` and `pixiu chat`: the OpenAI-compatible server, and a terminal conversation with one of its models."""

from __future__ import annotations

import os

import click

from pixiu.cli.hardware import PRECISIONS, check_device
from pixiu.config import DEFAULT_BASE

DEVICE = click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=check_device,
    help="Where the model runs: auto (the first GPU, else the CPU), cpu, cuda, cuda:N or mps.",
)
PRECISION = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Number format of the weights: auto is bf16 on GPUs that have it, fp16 on mps, fp32 on the CPU.",
)


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    """Parse repeated NAME=DIR options."""
    pairs = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name or not folder:
            raise click.BadParameter(f"{value!r} is not NAME=DIR", ctx=ctx, param=param)
        pairs[name] = folder
    return pairs


@click.command()
@click.option(
    "--base", default=DEFAULT_BASE, show_default=True, help="Base model: hub id, folder, .gguf or scheme:ref."
)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=DIR",
    callback=_pairs,
    help="Serve the adapter in DIR (or registered as DIR) as model NAME (repeatable).",
)
@click.option(
    "--registry/--no-registry",
    default=True,
    show_default=True,
    help="Also serve the newest registered adapter of every name trained on --base.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option(
    "--max-batch",
    type=click.IntRange(min=1),
    default=32,
    show_default=True,
    help="Requests generated together in one forward pass.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Requests waiting to start; more get HTTP 429.",
)
@click.option(
    "--max-adapters",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Adapters served at once; loading one more evicts the least recently used.",
)
@click.option(
    "--max-prompt-tokens", type=click.IntRange(min=1), default=4096, show_default=True, help="Longest prompt accepted."
)
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    default=2048,
    show_default=True,
    help="Largest max_tokens a request may ask for.",
)
@click.option(
    "--prefill-chunk",
    type=click.IntRange(min=1),
    default=512,
    show_default=True,
    help="Prompt tokens prefilled between two decode steps: a long prompt never stalls streams for longer.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds a connection has to send a whole request (head and body); slower ones are closed.",
)
@click.option(
    "--keep-alive",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Seconds an idle keep-alive connection stays open.",
)
@click.option(
    "--shutdown-timeout",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Seconds open requests and streams get to finish on shutdown before they are cut.",
)
@click.option("--force", is_flag=True, help="Load --adapter folders even if they record another base model.")
@DEVICE
@PRECISION
@click.option(
    "--engine",
    "backend",
    type=click.Choice(["pixiu", "vllm"]),
    default="pixiu",
    show_default=True,
    help="pixiu: this process generates. vllm: start vLLM's OpenAI server with the same base and adapters "
    "(Linux + CUDA, pip install 'pixiu[vllm]') behind a proxy that keeps plugins' process_response.",
)
@click.option("--print-command", is_flag=True, help="With --engine vllm: print the vLLM command line and exit.")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch [default: torch's choice]; 1 helps on a busy shared CPU.",
)
def serve(
    base,
    adapters,
    registry,
    host,
    port,
    max_batch,
    max_queue,
    max_adapters,
    max_prompt_tokens,
    max_tokens,
    prefill_chunk,
    read_timeout,
    keep_alive,
    shutdown_timeout,
    force,
    device,
    precision,
    backend,
    print_command,
    threads,
) -> None:
    """Serve the base model and its adapters over an OpenAI-compatible HTTP API.

    The base model is loaded once; each adapter is a model name chosen per request. Requests for
    LoRA-family adapters share forward passes (per row); dora, ia3, adalora, prefix and prompt
    adapters are served through peft, one adapter per forward pass (GET /v1/models says which).
    Endpoints: /v1/models, /v1/chat/completions, /v1/completions (streaming with "stream": true),
    /health and /metrics; a web chat page is at / (docs/web.md); its Compare votes go through
    POST /v1/feedback/pairs to $PIXIU_HOME/feedback/pairs.jsonl. Every training run (its loss curve,
    scores and predictions, live while it trains) is browsable at /runs, read-only (GET /v1/runs).
    With PIXIU_ADMIN_TOKEN set, POST /v1/adapters and DELETE /v1/adapters/NAME load and unload
    adapters without a restart.

    \b
    Examples:
      pixiu serve                                   # default base + every registered adapter
      pixiu serve --adapter law=~/.pixiu/runs/law-20250101-120000 --no-registry
      PIXIU_ADMIN_TOKEN=secret pixiu serve --host 0.0.0.0 --port 9000
      pixiu serve --device cuda:1 --precision bf16
      pixiu serve --engine vllm                     # vLLM generates; pixiu's hooks stay in front
      curl localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
        -d '{"model": "law", "messages": [{"role": "user", "content": "..."}]}'
    """
    import torch
    import uvicorn

    from pixiu.devices import placement, precision_name
    from pixiu.serve.app import build_app
    from pixiu.serve.guard import Timeouts, uvicorn_config
    from pixiu.serve.server import adapters_to_serve, context_length, served_as, start_engine
    from pixiu.serve.state import Limits

    if threads:
        torch.set_num_threads(threads)
    if print_command and backend != "vllm":
        raise click.UsageError("--print-command goes with --engine vllm")
    folders, notes = adapters_to_serve(base, adapters, registry=registry)
    for note in notes:
        click.echo(note, err=True)
    timeouts = Timeouts(read=read_timeout, keep_alive=keep_alive, shutdown=shutdown_timeout)
    if backend == "vllm":
        from pixiu.reward_model import is_reward_model

        for name in [name for name, folder in folders.items() if is_reward_model(folder)]:
            del folders[name]  # vLLM would load its LoRA as a chat adapter and generate with it
            click.echo(f"not serving reward model {name!r} on vLLM: POST /v1/score needs --engine pixiu", err=True)
        _serve_vllm(
            base,
            folders,
            host=host,
            port=port,
            device=device,
            precision=precision,
            max_batch=max_batch,
            force=force,
            print_command=print_command,
            timeouts=timeouts,
        )
        return
    where, dtype = placement(device, precision)
    engine, tokenizer = start_engine(
        base,
        folders,
        max_batch=max_batch,
        max_waiting=max_queue,
        max_adapters=max_adapters,
        prefill_chunk=prefill_chunk,
        force=force,
        dtype=dtype,
        device=where,
    )
    try:
        limits = Limits(context=context_length(engine), max_prompt_tokens=max_prompt_tokens, max_tokens=max_tokens)
        admin_token = os.environ.get("PIXIU_ADMIN_TOKEN") or None
        app = build_app(engine, tokenizer, base=base, limits=limits, admin_token=admin_token)
        click.echo(
            f"serving {base} on {where} in {precision_name(dtype)} with adapters: {served_as(engine) or 'none'}; "
            f"admin endpoints {'on' if admin_token else 'off (set PIXIU_ADMIN_TOKEN)'}; "
            "web chat page at /, runs at /runs",
            err=True,
        )
        uvicorn.Server(uvicorn_config(app, host=host, port=port, timeouts=timeouts)).run()
    finally:
        engine.stop()


@click.command()
@click.argument("model", metavar="DOMAIN")
@click.option(
    "--url", help="A running `pixiu serve`, e.g. http://127.0.0.1:8000 [default: run the model in this process]."
)
@click.option("--base", help="Base model when running in this process [default: the adapter's own base].")
@click.option("--system", help="A system message that starts the conversation.")
@click.option(
    "--max-tokens", type=click.IntRange(min=1), default=512, show_default=True, help="Longest answer, in tokens."
)
@DEVICE
@PRECISION
def chat(model, url, base, system, max_tokens, device, precision) -> None:
    """Chat with DOMAIN (an adapter name, or "base") in the terminal; answers stream as they are generated.

    Type /reset to start over and /exit (or Ctrl-D) to leave.

    \b
    Examples:
      pixiu chat law                                # loads the base and the law adapter here
      pixiu chat medical --url http://127.0.0.1:8000
      pixiu chat law --device cuda --precision bf16
    """
    if url:
        _converse(url, model, system, max_tokens)
        return
    from pixiu.devices import placement
    from pixiu.registry import list_adapters, resolve_adapter
    from pixiu.serve.adapters import BASE
    from pixiu.serve.app import build_app
    from pixiu.serve.server import background_server, context_length, start_engine
    from pixiu.serve.state import Limits

    folders = {} if model == BASE else {model: resolve_adapter(model)}
    trained_on = next((e.base for e in list_adapters() if e.name == model), None)
    base = base or trained_on or DEFAULT_BASE
    where, dtype = placement(device, precision)
    click.echo(f"loading {base} on {where}...", err=True)
    # the user chose this adapter and (maybe) another base by hand: a recorded base is not enforced here
    engine, tokenizer = start_engine(base, folders, max_batch=1, max_waiting=1, force=True, dtype=dtype, device=where)
    try:
        app = build_app(engine, tokenizer, base=base, limits=Limits(context=context_length(engine)), admin_token=None)
        with background_server(app) as local_url:
            _converse(local_url, model, system, max_tokens)
    finally:
        engine.stop()


def _serve_vllm(base, folders, *, host, port, device, precision, max_batch, force, print_command, timeouts) -> None:
    """`pixiu serve --engine vllm`: vLLM serves the base and adapters on a private port, pixiu's proxy on `port`."""
    import shlex
    from pathlib import Path

    import uvicorn
    from transformers import AutoConfig, AutoTokenizer

    from pixiu.models import resolve_base
    from pixiu.seq2seq import is_encoder_decoder
    from pixiu.serve import vllm
    from pixiu.serve.guard import uvicorn_config
    from pixiu.serve.proxy import build_proxy
    from pixiu.serve.server import adapter_domain, check_base, free_port

    if device in ("cpu", "mps"):
        raise click.UsageError(f"--engine vllm runs on NVIDIA GPUs, not --device {device}; use --engine pixiu")
    base_folder = resolve_base(base)
    if Path(base_folder).is_dir() and is_encoder_decoder(AutoConfig.from_pretrained(base_folder)):
        raise click.UsageError(
            f"--engine vllm is not used for the encoder-decoder base {base}; serve it with --engine pixiu "
            "(see docs/model-families.md)"
        )
    for folder in folders.values():
        check_base(folder, base, base_folder, force=force, how="pass --force")
    ranks = [vllm.check_adapter_for_vllm(folder) for folder in folders.values()]
    upstream = free_port()
    command = vllm.vllm_command(
        base_folder, folders, ranks, host="127.0.0.1", port=upstream, precision=precision, max_batch=max_batch
    )
    if print_command:
        click.echo(shlex.join(command))
        return
    vllm.require_vllm()
    env = {"CUDA_VISIBLE_DEVICES": device.partition(":")[2]} if device.startswith("cuda:") else {}
    click.echo(f"starting vLLM: {shlex.join(command)}", err=True)
    process = vllm.start_vllm(command, f"http://127.0.0.1:{upstream}", env=env)
    try:
        domains = {name: adapter_domain(folder) for name, folder in folders.items()}
        tokenizer = AutoTokenizer.from_pretrained(base_folder)  # counts what hooks add to the answers
        app = build_proxy(f"http://127.0.0.1:{upstream}", domains, tokenizer)
        click.echo(f"serving {base} through vLLM with adapters: {', '.join(folders) or 'none'}", err=True)
        uvicorn.Server(uvicorn_config(app, host=host, port=port, timeouts=timeouts)).run()
    finally:
        vllm.stop_vllm(process)


def _converse(url: str, model: str, system: str | None, max_tokens: int) -> None:
    """Read a line, stream the answer, repeat; the whole conversation is sent each turn."""
    from pixiu.serve.chat import stream_reply

    start = [{"role": "system", "content": system}] if system else []
    messages = list(start)
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            click.echo()
            return
        if line == "/exit":
            return
        if line == "/reset":
            messages = list(start)
            continue
        if not line:
            continue
        messages.append({"role": "user", "content": line})
        answer = []
        for piece in stream_reply(url, model, messages, max_tokens=max_tokens):
            answer.append(piece)
            click.echo(piece, nl=False)
        click.echo()
        messages.append({"role": "assistant", "content": "".join(answer)})


commands = (serve, chat)
"""The top-level commands this module adds to `pixiu`."""
