"""`pixiu domain ...`: list, train, evaluate and crawl the installed verticals."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixiu.cli.hardware import PRECISIONS, check_device
from pixiu.cli.output import print_rows
from pixiu.formats import DATA_FORMATS
from pixiu.paths import ensure_writable, pixiu_home, runs_dir
from pixiu.runs import new_run_dir

RECIPES = {"sft": "lora_sft", "dpo": "dpo", "kto": "kto", "grpo": "grpo", "rm": "reward_model", "ppo": "ppo"}
"""The module in pixiu.recipes that trains each `train.method`."""
GENERAL_MEASURES = {"nll_per_token": "lower is better", "rouge_l": "x100", "contains_answer": "% of answers"}
"""The forgetting probe's figures, as the end-of-run and `pixiu domain eval` tables show them."""


@click.group(name="domain")
def group() -> None:
    """Work with domains (verticals): list, train, eval, judge, crawl.

    \b
    Examples:
      pixiu domain list
      pixiu domain train law                          # sample data, default base, default recipe
      pixiu domain train law --data cail.jsonl --max-steps 300 --set train.lr=1e-4
      pixiu domain train chat --data sharegpt.jsonl         # general chat: Alpaca, ShareGPT or OpenAI rows
      pixiu domain eval law --adapter law --limit 100
      pixiu domain judge law --adapter law --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-72b
      pixiu domain crawl law --output cases.jsonl
    """


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_domains(as_json: bool) -> None:
    """List installed domains.

    \b
    Examples:
      pixiu domain list
      pixiu domain list --json                        # sample data, default recipe and spiders too
    """
    from pixiu.plugins import get_domains

    rows = [
        {
            "name": d.name,
            "description": d.description,
            "version": d.version,
            "package": d.formatter.__module__.split(".")[0],
            "sample_data": str(d.sample_data) if d.sample_data else None,
            "default_config": str(d.default_config) if d.default_config else None,
            "spiders": list(d.spiders),
        }
        for d in get_domains().values()
    ]
    empty = "No domains installed. Install one with pip (its entry point group is `pixiu`)."
    print_rows(rows, ["name", "version", "package", "description"], as_json=as_json, empty=empty)


@group.command()
@click.argument("domain_name", metavar="DOMAIN")
@click.option("--base", help="Base model: hub id, local folder, .gguf file, or scheme:ref (default from the recipe).")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="Raw records (.jsonl/.json) instead of the sample data.",
)
@click.option(
    "--method",
    type=click.Choice(list(RECIPES)),
    help="Objective (train.method): sft learns gold answers; dpo prefers chosen over rejected answers of pairs; "
    "kto learns from thumbs-up and thumbs-down answers; "
    "grpo samples answers and learns from the domain's reward; rm trains a reward model on pairs; ppo samples "
    "answers and learns from the reward model's scores.",
)
@click.option(
    "--format",
    "data_format",
    type=click.Choice(DATA_FORMATS),
    help="How records are read (data.format): domain (its own formatter), auto (detect each row), alpaca, "
    "sharegpt or messages; see docs/data-formats.md.",
)
@click.option("--max-steps", type=int, help="Optimiser steps (same as --set train.max_steps=N).")
@click.option("--output", type=click.Path(path_type=Path), help="Run directory [default: PIXIU_HOME/runs/DOMAIN-TIME].")
@click.option("--resume", is_flag=True, help="Continue the run in --output (or this domain's newest unfinished run).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, path_type=Path),
    help="A YAML recipe laid over the domain's own.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe key, e.g. train.lr=1e-4 (repeatable).",
)
@click.option(
    "--on-bad-record", type=click.Choice(["error", "skip"]), help="Stop at a bad record, or skip it into rejects.jsonl."
)
@click.option("--device", callback=check_device, help="auto | cpu | cuda | cuda:N | mps (train.device).")
@click.option("--precision", type=click.Choice(PRECISIONS), help="Base weights' dtype (same as train.precision).")
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing",
    default=None,
    help=(
        "Recompute activations in the backward pass: less memory, more compute (train.gradient_checkpointing; "
        "--set train.recompute_every=2 recomputes every other layer only)."
    ),
)
@click.option(
    "--devices",
    type=click.IntRange(min=1),
    help="Data-parallel processes, one per GPU (CPU processes on gloo without CUDA); same as train.devices.",
)
@click.option(
    "--strategy",
    type=click.Choice(["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"]),
    help="How --devices share the work (train.strategy); fsdp and deepspeed need CUDA.",
)
@click.option(
    "--report-to",
    type=click.Choice(["none", "tensorboard", "wandb", "mlflow"]),
    help="Mirror the step log and final metrics to this tracker, offline (train.report_to; docs/tracking.md).",
)
def train(
    domain_name,
    base,
    data_path,
    method,
    data_format,
    max_steps,
    output,
    resume,
    config_path,
    overrides,
    on_bad_record,
    device,
    precision,
    gradient_checkpointing,
    devices,
    strategy,
    report_to,
) -> None:
    """Train a LoRA adapter for DOMAIN, evaluate it against the base model, and register it.

    The recipe is the domain's YAML (see `pixiu domain list --json`), then --config, then the flags, then --set;
    the domain's own settings are keys under plugins.DOMAIN (e.g. --set plugins.zhihu.top_answers=5).
    Checkpoints are written every train.save_every steps; a killed run continues with --resume.

    --set lora.method=NAME picks the tuning method (--method stays the objective): lora, rslora, dora, pissa, olora,
    loraplus, ia3, prefix, prompt, adalora, or full / freeze (a whole model folder, for small models); see
    docs/tuning-methods.md for which of them pixiu serve serves per row and which are merged first.

    --method dpo trains on preference pairs: JSONL rows with prompt, chosen and rejected (TRL's format), or raw
    records the domain turns into pairs (zhihu: answers ranked by votes). The reference model is the base with
    the adapter off; held-out pairs are scored by their log-prob margin, and the adapter registers as DOMAIN-dpo.
    Choose the loss with --set dpo.loss=sigmoid|ipo|simpo|rrhf and its strength with --set dpo.beta=0.1.

    --method kto learns from unpaired feedback: JSONL rows with prompt, completion and label (true for a
    thumbs up, false for a thumbs down; trl's format), or pairs, each giving one answer of each kind. Held-out
    answers are scored by how far apart the two kinds' log-probs and implicit rewards lie; it registers as
    DOMAIN-kto. Weigh the kinds with --set kto.desirable_weight=1.0 --set kto.undesirable_weight=1.0.

    --method grpo samples grpo.group_size answers to each training prompt, scores them with the domain's reward
    function and learns from each answer's reward against its group's (no value model); it registers as
    DOMAIN-grpo. Start it from a trained adapter with --set train.init_adapter=NAME (e.g. the domain's sft one).

    --method rm trains a reward model on the same preference pairs as dpo: a scalar head reads the adapted base's
    last answer token and learns to score the chosen answer above the rejected one (Bradley-Terry). Held-out pairs
    are scored by pairwise accuracy and margin, and it registers as DOMAIN-rm (pixiu.reward_model loads it).

    --method ppo samples one answer to each prompt of the pairs, scores it with the reward model DOMAIN-rm (or
    --set ppo.reward_model=NAME) and learns with a value head, a KL penalty to the base and clipped updates; policy,
    reference and reward model share one base in memory. With --set ppo.reward=domain it scores with the domain's
    reward on the domain's examples instead. It registers as DOMAIN-ppo.

    --format reads records of a standard format in any domain instead of the domain's own: alpaca (instruction,
    input, output), sharegpt (conversations of from/value turns), messages (OpenAI's role/content list), or auto
    to detect each row; pair methods read the same formats' chosen/rejected rows. The `chat` domain reads them all.

    \b
    Examples:
      pixiu domain train law
      pixiu domain train law --data cail.jsonl --max-steps 300 --set train.lr=1e-4
      pixiu domain train law --base /tmp/tiny --max-steps 5 --output /tmp/law-run
      pixiu domain train law --report-to tensorboard   # then: tensorboard --logdir RUN/tensorboard
      pixiu domain train law --resume --output /tmp/law-run
      pixiu domain train law --device cuda --precision bf16 --gradient-checkpointing
      pixiu domain train law --devices 4                # data-parallel on 4 GPUs through accelerate
      pixiu domain train law --set lora.method=dora     # or rslora, pissa, ia3, prefix, adalora, full, ...
      pixiu domain train law --devices 8 --strategy deepspeed-zero3
      pixiu domain train zhihu --method dpo                 # pairs from the sample data's answer votes
      pixiu domain train zhihu --method dpo --data pairs.jsonl --set dpo.loss=ipo
      pixiu domain train zhihu --method kto --data thumbs.jsonl
      pixiu domain train law --method grpo --set train.init_adapter=law --max-steps 20
      pixiu domain train zhihu --method rm --data pairs.jsonl --max-steps 200
      pixiu domain train zhihu --method ppo --set train.init_adapter=zhihu   # sft -> rm -> ppo
      pixiu domain train law --method ppo --set ppo.reward=domain
      pixiu domain train chat --data sharegpt.jsonl         # any mix of alpaca, sharegpt and messages rows
      pixiu domain train law --data belle.jsonl --format alpaca
      pixiu domain train chat --method dpo --data ranked.jsonl   # TRL or LLaMA-Factory pair rows
    """
    from pixiu.config import load_config
    from pixiu.distributed import is_main_process, under_launcher
    from pixiu.plugins import get_domain
    from pixiu.resume import resumed_config

    domain = get_domain(domain_name)
    if under_launcher() and output is None:
        raise click.UsageError(
            "under accelerate launch or torchrun pass --output DIR, so that every process trains into one run folder"
        )
    flags = {
        "base": base,
        "train.method": method,
        "data.format": data_format,
        "train.max_steps": max_steps,
        "data.on_bad_record": on_bad_record,
        "train.device": device,
        "train.precision": precision,
        "train.gradient_checkpointing": gradient_checkpointing,
        "train.devices": devices,
        "train.strategy": strategy,
        "train.report_to": report_to,
    }
    values = {key: value for key, value in flags.items() if value is not None}
    if resume:
        # the run folder's pixiu_run.yaml is the config; the flags given again may only repeat it
        run_dir = output or _latest_unfinished_run(domain.name)
        config, data_path = resumed_config(
            run_dir,
            domain,
            yaml_paths=[config_path] if config_path else [],
            overrides=overrides,
            values=values,
            data_path=data_path,
        )
    else:
        yaml_paths = [p for p in (domain.default_config, config_path) if p]
        config = load_config(yaml_paths, overrides, values=values, domain=domain)
        data_path = data_path or _sample_data(domain, pairs=config.reads_pairs())
        run_dir = output or new_run_dir(domain.name)
    ensure_writable(run_dir, "run folder", "pass --output DIR with a folder you can write to")
    ensure_writable(pixiu_home(), "PIXIU_HOME", "point PIXIU_HOME at a folder you can write to (it holds the registry)")
    try:
        if config.train.devices > 1 and not under_launcher():
            _launch_processes(domain.name, config.train, run_dir)
            return
        summary = _recipe(config.train.method).run(domain, config, data_path, run_dir, resume=resume)
    except KeyboardInterrupt:
        if not is_main_process():  # rank 0 says it for all
            raise SystemExit(130) from None
        click.echo(
            f"Error: interrupted; the newest checkpoint is kept. Continue with:\n"
            f"  pixiu domain train {domain.name} --resume --output {run_dir}",
            err=True,
        )
        raise SystemExit(130) from None  # 128 + SIGINT, as shells report an interrupted command
    if not is_main_process():  # rank 0 of a launch reports for all
        return
    if summary.metrics.get("records"):
        compared = " vs ".join(v for v in ("base", "adapter") if v in summary.metrics)
        units = {"ppo": "prompts", "kto": "answers"}
        unit = units.get(config.train.method, "pairs" if config.reads_pairs() else "records")
        _print_scores(summary.metrics, f"{domain.name}: {compared} on {summary.metrics['records']} held-out {unit}")
        if "general" in summary.metrics:
            _print_general(summary.metrics["general"])
    else:
        click.echo("no records were held out, so nothing was evaluated (raise data.eval_records to evaluate)")
    name = domain.name + _recipe(config.train.method).ADAPTER_SUFFIX
    click.echo(f"adapter saved in {summary.run_dir} and registered as {name!r}")


@group.command(name="eval")
@click.argument("domain_name", metavar="DOMAIN")
@click.option("--base", help="Base model [default: the adapter's base, else the domain recipe's].")
@click.option("--adapter", help="Registered adapter name or adapter folder; scores are shown next to the base's.")
@click.option(
    "--data", "data_path", type=click.Path(path_type=Path), help="Records to score [default: the held-out split]."
)
@click.option("--limit", type=int, help="Score at most N records.")
@click.option(
    "--format",
    "data_format",
    type=click.Choice(DATA_FORMATS),
    help="How --data records are read [default: the adapter run's data.format, else domain]: domain, auto, "
    "alpaca, sharegpt or messages.",
)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    callback=check_device,
    help="auto | cpu | cuda | cuda:N | mps.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Base weights' dtype; auto is bf16 on GPUs that support it, fp32 on the CPU.",
)
@click.option(
    "--general/--no-general",
    default=None,
    help="Also run the forgetting probe, base and adapter on general questions [default: eval.general, on].",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def evaluate_command(
    domain_name, base, adapter, data_path, limit, data_format, device, precision, general, as_json
) -> None:
    """Generate answers greedily and score them with DOMAIN's metrics.

    Without --data, the records held out from training are used: the adapter's own split when it
    has one, otherwise the held-out part of the domain's sample data. The forgetting probe then scores
    base and adapter on general questions that are not the domain's (see docs/evaluation.md).

    \b
    Examples:
      pixiu domain eval law                           # the base model alone
      pixiu domain eval law --adapter law --limit 100
      pixiu domain eval law --adapter ~/.pixiu/runs/law-20250101-120000 --data test.jsonl --json
      pixiu domain eval law --adapter law --device cuda --precision bf16
      pixiu domain eval chat --adapter chat --data dialogues.jsonl --format sharegpt
      pixiu domain eval law --adapter law --no-general  # domain scores only
    """
    from pixiu.evaluation import evaluate_domain

    report = evaluate_domain(
        domain_name,
        base=base,
        adapter=adapter,
        data_path=data_path,
        limit=limit,
        device=device,
        precision=precision,
        data_format=data_format,
        general=general,
    )
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_scores(report["scores"], f"{domain_name} on {report['records']} records from {report['data']}")
        if "general" in report:
            _print_general(report["general"])


@group.command()
@click.argument("domain_name", metavar="DOMAIN")
@click.option("--adapter", required=True, help="Registered adapter name or run folder to judge against its base.")
@click.option("--teacher-url", required=True, help="OpenAI-compatible endpoint of the judge, e.g. http://host:8000/v1.")
@click.option("--teacher-model", required=True, help="The judge's model name at that endpoint.")
@click.option(
    "--api-key", envvar="PIXIU_TEACHER_API_KEY", help="Bearer key for the endpoint [env: PIXIU_TEACHER_API_KEY]."
)
@click.option("--base", help="Base model [default: the adapter's base].")
@click.option(
    "--data", "data_path", type=click.Path(path_type=Path), help="Records to judge on [default: the held-out split]."
)
@click.option("--limit", type=int, help="Judge at most N prompts.")
@click.option("--device", default="auto", show_default=True, callback=check_device, help="Where answers are generated.")
@click.option(
    "--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True, help="Base weights' dtype."
)
@click.option("--json", "as_json", is_flag=True, help="Print the judge's tally as one JSON object.")
def judge(
    domain_name, adapter, teacher_url, teacher_model, api_key, base, data_path, limit, device, precision, as_json
) -> None:
    """Ask an LLM judge whether the adapter answers DOMAIN's held-out prompts better than its base.

    Each prompt's two answers are judged twice, in both orders, to cancel the judge's position bias; an answer
    wins only when it wins in both orders, anything else is a tie. The answers are the run's predictions.jsonl
    when it holds both (else they are generated). Writes judge.jsonl (every prompt, both answers, both raw
    verdicts), judge_pairs.jsonl (each decided prompt as a prompt/chosen/rejected pair, which
    `--method dpo --data` reads) and a `judge` section into the run's metrics.json, and rebuilds its
    report.html. Requests are cached in the run folder, so an interrupted judge resumes when run again.

    \b
    Examples:
      pixiu domain judge law --adapter law --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-72b
      pixiu domain judge zhihu --adapter zhihu --teacher-url https://api.openai.com/v1 --teacher-model gpt-4o \\
          --limit 50 --json                         # key from PIXIU_TEACHER_API_KEY
    """
    from pixiu.judge import judge_adapter

    section = judge_adapter(
        domain_name,
        adapter=adapter,
        teacher_url=teacher_url,
        teacher_model=teacher_model,
        api_key=api_key,
        base=base,
        data_path=data_path,
        limit=limit,
        device=device,
        precision=precision,
    )
    if as_json:
        click.echo(json.dumps(section, ensure_ascii=False, indent=2))
        return
    rate = "n/a" if section["win_rate"] is None else f"{section['win_rate']:.3f}"
    low, high = section["ci95"]
    click.echo(
        f"{teacher_model} judged {section['prompts']} prompts: adapter wins {section['adapter_wins']}, "
        f"ties {section['ties']}, base wins {section['base_wins']}, unparsed {section['unparsed']}; "
        f"adapter win rate {rate} (95% Wilson interval {low:.3f}-{high:.3f})"
    )


@group.command()
@click.argument("domain_name", metavar="DOMAIN")
@click.option(
    "--output", type=click.Path(path_type=Path), help="JSONL to append to [default: PIXIU_HOME/data/DOMAIN/raw.jsonl]."
)
@click.option(
    "--arg", "spider_args", multiple=True, metavar="KEY=VALUE", help="Spider argument, e.g. start_url=... (repeatable)."
)
def crawl(domain_name, output, spider_args) -> None:
    """Run DOMAIN's spiders politely (robots.txt, throttling, retries) and append raw records to JSONL.

    An interrupted crawl continues where it stopped when run again (scrapy job dir in PIXIU_HOME/crawl).

    \b
    Examples:
      pixiu domain crawl law --output cases.jsonl
      pixiu domain crawl zhihu --arg question_ids=19550225 --output raw.jsonl
    """
    from pixiu.crawl import run_crawl
    from pixiu.plugins import get_domain

    domain = get_domain(domain_name)
    if not domain.spiders:
        raise click.UsageError(f"domain {domain.name!r} has no spiders")
    args = dict(_split_pair(item) for item in spider_args)
    output = output or pixiu_home() / "data" / domain.name / "raw.jsonl"
    summary = run_crawl(domain, output, spider_args=args)
    click.echo(summary.describe())


def _recipe(method: str):
    """The training recipe module (`run`, `ADAPTER_SUFFIX`) of `train.method`."""
    import importlib

    return importlib.import_module(f"pixiu.recipes.{RECIPES[method]}")


def _sample_data(domain, *, pairs: bool) -> Path:
    """The data a run trains on when no --data is given: the domain's sample data, if it makes the `pairs` a
    preference method needs."""
    if pairs and domain.preference_formatter is None:
        raise click.UsageError(
            f"domain {domain.name!r} has no preference formatter to make pairs of its sample data; "
            "pass --data PAIRS.jsonl with prompt, chosen and rejected in each row"
        )
    if domain.sample_data is None:
        raise click.UsageError(f"domain {domain.name!r} ships no sample data; pass --data FILE")
    return domain.sample_data


def _launch_processes(domain: str, train, run_dir: Path) -> None:
    """Start this same command as `train.devices` processes under accelerate's launcher, into `run_dir`."""
    import sys

    from pixiu.distributed import check_devices, launch, launch_command

    check_devices(train.devices, train.strategy, train.device)
    argv = [*sys.argv[1:], "--output", str(run_dir)]  # every rank writes to (and rank 0 locks) one folder
    resume = f"pixiu domain train {domain} --resume --output {run_dir} --devices {train.devices}"
    launch(launch_command(argv, train.devices, train.strategy), run_dir, resume)


def _split_pair(item: str) -> tuple[str, str]:
    """Split KEY=VALUE."""
    key, sep, value = item.partition("=")
    if not sep:
        raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--arg")
    return key, value


def _latest_unfinished_run(domain: str) -> Path:
    """The newest run of `domain` that has checkpoints but did not finish."""
    from pixiu.runs import RUN_FILE, read_run_file

    candidates = sorted(runs_dir().glob(f"{domain}-*"), reverse=True)
    for run_dir in candidates:
        if (run_dir / RUN_FILE).is_file() and read_run_file(run_dir).get("status") != "finished":
            return run_dir
    raise click.UsageError(f"no unfinished {domain} run under {runs_dir()}; pass --output DIR to choose one")


def _print_scores(scores: dict, title: str) -> None:
    """Show metric columns side by side (base, adapter, and the held-out chosen answers where scored) as a table."""
    from rich.console import Console
    from rich.table import Table

    variants = [v for v in ("base", "adapter", "chosen") if v in scores]
    names = sorted({name for v in variants for name in scores[v]})
    table = Table("metric", *variants, title=title)
    for name in names:
        table.add_row(name, *(f"{scores[v].get(name, float('nan')):.2f}" for v in variants))
    Console().print(table)


def _print_general(general: dict) -> None:
    """Show the forgetting probe's figures, base beside adapter, as a table."""
    from rich.console import Console
    from rich.table import Table

    variants = [v for v in ("base", "adapter") if v in general]
    source = "bundled questions" if general["data"] == "bundled" else general["data"]
    table = Table("general (forgetting probe)", *variants, title=f"general: {general['records']} {source}")
    for name, note in GENERAL_MEASURES.items():
        table.add_row(f"{name} ({note})", *(f"{general[v][name]:.2f}" for v in variants))
    Console().print(table)
