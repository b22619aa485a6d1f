"""The family x tuning-method matrix of README.md, checked cell by cell on tiny models.

Each cell of the README's table is a test: 3 training steps, save, reload from disk and evaluate (T, E), then
every serving route the cell claims, each compared with peft (or the plain model) token for token: R per row in
the mixed batch, S through peft one adapter at a time, M merged (`pixiu adapters merge`; for full / freeze the
run's own model folder) and served as `--base`. A route the cell does not claim must be refused with the method's
name; a "—" cell must be refused before any training. Tiny random models prove the plumbing, not quality.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from pixiu.errors import PixiuError
from pixiu.generate import stop_token_ids
from pixiu.methods import WHOLE_MODEL, adapter_method
from pixiu.models import load_base
from pixiu.seq2seq import is_encoder_decoder
from pixiu.serve.request import SamplingParams
from pixiu.tiny import ARCHES

from .helpers import chat_ids
from .test_engine import Collector

README = Path(__file__).resolve().parents[2] / "README.md"
HEADER = re.compile(r"^\| family \\ method \|(.*)\|$")
MARKS = {"T", "E", "R", "S", "M"}
FAST = {
    # every method on llama but those another default cell already serves the same way
    *(("llama", m) for m in ("lora", "rslora", "dora", "pissa", "ia3", "prefix", "adalora", "full")),
    # the LoRA column where the layouts differ most from llama: Conv1D, fused qkv with alibi, a sliding window, a
    # recurrent state, an encoder-decoder
    *((family, "lora") for family in ("gpt2", "bloom", "gemma2", "rwkv", "t5")),
    # methods meeting those layouts: IA3 on Conv1D, prefix on bloom's own cache, DoRA on fused layers
    ("gpt2", "ia3"),
    ("bloom", "prefix"),
    ("gemma2", "prefix"),  # served single: a whole prefix in sliding-window layers
    ("gpt_neox", "dora"),
    ("mixtral", "freeze"),
}
"""The cells the default suite runs; the rest run with -m slow."""


def read_matrix(path: Path = README) -> dict[tuple[str, str], set[str] | None]:
    """The README's family x method table: (family, method) -> its marks, None for a refused ("—") cell."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if HEADER.match(line))
    methods = [m.strip().strip("`") for m in HEADER.match(lines[start]).group(1).split("|")]  # type: ignore[union-attr]
    cells: dict[tuple[str, str], set[str] | None] = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        family, *marks = (cell.strip().strip("`") for cell in line.strip("|").split("|"))
        for method, mark in zip(methods, marks, strict=True):
            cells[family, method] = None if mark == "—" else set(mark.split())
    return cells


MATRIX = read_matrix()


def cell_params():
    """Every cell of the table; those outside `FAST` are slow."""
    return [
        pytest.param(family, method, marks=() if (family, method) in FAST else pytest.mark.slow)
        for family, method in MATRIX
    ]


def test_the_table_covers_every_family_and_method_with_known_marks():
    from typing import get_args

    from pixiu.config import LoraArgs

    methods = set(get_args(LoraArgs.model_fields["method"].annotation))
    assert {family for family, _ in MATRIX} == set(ARCHES)
    assert {method for _, method in MATRIX} == methods
    for cell, marks in MATRIX.items():
        assert marks is None or ({"T", "E"} <= marks <= MARKS), cell


@pytest.mark.parametrize(("family", "method"), cell_params())
def test_cell(family, method, tiny_family, tmp_path, toy_plugin):
    from pixiu.config import load_config
    from pixiu.evaluation import evaluate_domain
    from pixiu.recipes.lora_sft import run
    from toy_domain import TINY_RUN, TOY, write_toy_data

    marks = MATRIX[family, method]
    base = tiny_family(family)
    data = write_toy_data(tmp_path / "toy.jsonl", 12)
    run_dir = tmp_path / "run"
    config = load_config(overrides=[*TINY_RUN, f"lora.method={method}"], values={"base": str(base)})
    if marks is None:
        with pytest.raises(PixiuError, match=f"lora.method={method}"):
            run(TOY, config, data, run_dir)
        assert not (run_dir / "train_log.jsonl").exists()
        return
    run(TOY, config, data, run_dir)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3] and all(row["loss"] > 0 for row in log)
    check_saved(base, run_dir, method)
    report = evaluate_domain("toy", adapter=str(run_dir), limit=1)  # reloaded from disk
    assert report["records"] == 1 and "adapter" in report["scores"]
    if method in WHOLE_MODEL:
        check_whole_model(run_dir, marks)
        return
    check_adapter_serving(base, run_dir, method, marks)
    check_merge(base, run_dir, tmp_path / "merged", method, marks)


def check_saved(base: Path, run_dir: Path, method: str) -> None:
    """The run folder records the method and the chat template; an adapter is of the method's peft type on the
    family's `auto` layers; a whole model changed the layers the method trains and no others."""
    import yaml

    from pixiu.families import lora_targets

    model, tokenizer = load_base(str(base))
    record = yaml.safe_load((run_dir / "pixiu_run.yaml").read_text(encoding="utf-8"))
    assert adapter_method(run_dir) == method and record["prompt_template"] == tokenizer.chat_template
    if method in WHOLE_MODEL:
        assert not (run_dir / "adapter_config.json").exists()
        tuned = dict(load_base(str(run_dir))[0].named_parameters())
        changed = {n for n, p in model.named_parameters() if not torch.equal(p, tuned[n])}
        layers = max((m for m in model.modules() if isinstance(m, torch.nn.ModuleList)), key=len)
        last = {n for n, p in model.named_parameters() if any(p is q for q in layers[-1].parameters())}
        assert changed == last if method == "freeze" else changed > last  # lora.freeze_layers=1
        return
    config = json.loads((run_dir / "adapter_config.json").read_text(encoding="utf-8"))
    peft_types = {"ia3": "IA3", "prefix": "PREFIX_TUNING", "prompt": "PROMPT_TUNING", "adalora": "ADALORA"}
    assert config["peft_type"] == peft_types.get(method, "LORA")
    assert config.get("use_dora", False) == (method == "dora") and config.get("use_rslora", False) == (
        method == "rslora"
    )
    if config["peft_type"] in ("LORA", "ADALORA"):
        assert sorted(config["target_modules"]) == sorted(lora_targets(model, "auto"))


def check_adapter_serving(base: Path, run_dir: Path, method: str, marks: set[str]) -> None:
    """The adapter is served per row (R) or through peft alone (S), equal to peft's generate, or refused by name."""
    from pixiu.serve.server import start_engine

    if not marks & {"R", "S"}:
        with pytest.raises(PixiuError, match=f"lora.method={method}"):
            start_engine(str(base), {"toy": run_dir}, max_batch=2, max_waiting=4)
        return
    from peft import PeftModel

    engine, tokenizer = start_engine(str(base), {"toy": run_dir}, max_batch=2, max_waiting=4)
    try:
        assert engine.adapters.loaded()["toy"].served == ("per_row" if "R" in marks else "single")
        jobs = {"toy": chat_ids(tokenizer, "被告人张某盗窃财物，构成什么罪？"), "base": chat_ids(tokenizer, "hello")}
        sinks = {name: submit(engine, name, prompt) for name, prompt in jobs.items()}  # two lengths, run together
        reference = PeftModel.from_pretrained(load_base(str(base))[0], str(run_dir)).eval()
        assert sinks["toy"].wait().tokens == greedy(reference, tokenizer, jobs["toy"])
        with reference.disable_adapter():
            assert sinks["base"].wait().tokens == greedy(reference, tokenizer, jobs["base"])
    finally:
        engine.close()


def check_merge(base: Path, run_dir: Path, output: Path, method: str, marks: set[str]) -> None:
    """The adapter merges into its base (M), whose logits equal peft's, and that base is served; or merging is
    refused by name."""
    from pixiu.merge import merge_adapter

    if "M" not in marks:
        with pytest.raises(PixiuError, match=f"lora.method={method}"):
            merge_adapter(run_dir, output, base=str(base))
        return
    merge_adapter(run_dir, output, base=str(base))
    from peft import PeftModel

    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.inference_mode():
        merged = logits(load_base(str(output))[0], ids)
        unmerged = logits(PeftModel.from_pretrained(load_base(str(base))[0], str(run_dir)), ids)
    assert torch.allclose(merged, unmerged, atol=1e-4)
    check_whole_model(output, {"M"})


def check_whole_model(folder: Path, marks: set[str]) -> None:
    """A whole model folder (full / freeze, or a merge) is served as `--base`, equal to its own generate."""
    from pixiu.serve.server import start_engine

    assert "M" in marks
    engine, tokenizer = start_engine(str(folder), {}, max_batch=2, max_waiting=4)
    try:
        prompt = chat_ids(tokenizer, "hello")
        model = load_base(str(folder))[0].eval()
        assert submit(engine, "base", prompt).wait().tokens == greedy(model, tokenizer, prompt)
    finally:
        engine.close()


def submit(engine, model: str, prompt: list[int]) -> Collector:
    """Queue one greedy request of up to 4 tokens to `model`; its sink collects the answer."""
    sink = Collector()
    engine.submit(model, prompt, SamplingParams(max_tokens=4), sink)
    return sink


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    """`model`'s logits on `ids` (an encoder-decoder reads them as its encoder input and its first decoder tokens)."""
    decoder = {"decoder_input_ids": ids[:, :3]} if is_encoder_decoder(model) else {}
    return model(input_ids=ids, **decoder).logits


@torch.inference_mode()
def greedy(model, tokenizer, prompt: list[int]) -> list[int]:
    """Up to 4 greedy tokens of `model` after `prompt`, without the stop token."""
    stops = stop_token_ids(tokenizer, model)
    ids = torch.tensor([prompt])
    output = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=4,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
    )
    answer = output[0, 1:] if is_encoder_decoder(model) else output[0, len(prompt) :]  # T5: after its decoder start
    return [t for t in answer.tolist() if t not in stops]
