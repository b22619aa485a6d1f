"""`pixiu medical …`: the medical domain's own verbs (knowledge graph, instruction data, CSV conversion)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pixiu.cli.teacher import api_key, cache_for, teacher_options

_IN = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)
_SAMPLE_KG = Path(__file__).resolve().parent / "sample_data" / "kg_synthetic.jsonl"


@click.group(name="medical")
def group() -> None:
    """Medical data: knowledge graph from crawled pages, instructions from the graph, CSV conversion.

    \b
    Examples, from a crawl to a trained adapter:
      pixiu domain crawl medical --output raw.jsonl        # also writes raw.kg.jsonl
      pixiu medical kg build raw.jsonl kg.jsonl             # or rebuild the graph from feeds
      pixiu medical kg stats kg.jsonl
      pixiu medical instructions kg.jsonl train.jsonl    # add --teacher-url/--teacher-model for fluent answers
      pixiu domain train medical --data train.jsonl
      pixiu domain eval medical --adapter medical
    """


@group.group(name="kg")
def kg_group() -> None:
    """Build and inspect knowledge graphs (JSONL, one fact per line).

    \b
    Examples:
      pixiu medical kg build raw.jsonl kg.jsonl
      pixiu medical kg stats kg.jsonl
    """


@kg_group.command(name="build")
@click.argument("raw", nargs=-1, required=True, type=_IN)
@click.argument("kg", type=_OUT)
def kg_build(raw: tuple[Path, ...], kg: Path) -> None:
    """Build the graph KG from one or more crawled RAW files, merging facts repeated across pages.

    \b
    Examples:
      pixiu medical kg build data/medical/raw.jsonl more.jsonl kg.jsonl
    """
    from pixiu.files import write_jsonl
    from pixiu_medical.kg import build_kg, kg_stats

    triples, unusable = build_kg(raw)
    write_jsonl(kg, triples)
    stats = kg_stats(triples)
    click.echo(f"{stats['entities']} entities and {stats['relations']} relations written to {kg}")
    if unusable:
        click.echo(f"  {unusable} crawled lines gave no fact (no name, no facts, or not JSON)")


@kg_group.command(name="stats")
@click.argument("kg", required=False, type=_IN)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def kg_stats_command(kg: Path | None, as_json: bool) -> None:
    """Print entity and relation counts of KG [default: the bundled synthetic graph].

    \b
    Examples:
      pixiu medical kg stats                          # the bundled synthetic graph
      pixiu medical kg stats kg.jsonl --json
    """
    from pixiu_medical.kg import kg_stats, read_kg

    kg = kg or _SAMPLE_KG
    stats = kg_stats(read_kg(kg))
    if as_json:
        click.echo(json.dumps({"kg": str(kg), **stats}, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{kg}: {stats['entities']} entities, {stats['relations']} relations, "
        f"{stats['diseases_with_facts']} diseases with facts"
    )
    click.echo("entities:  " + ", ".join(f"{kind} {n}" for kind, n in stats["entity_types"].items()))
    click.echo("relations: " + ", ".join(f"{name} {n}" for name, n in stats["relation_counts"].items()))


@group.command()
@click.argument("kg", type=_IN)
@click.argument("output", type=_OUT)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the choice of phrasings.")
@click.option(
    "--phrasings", type=click.IntRange(min=1), default=2, show_default=True, help="Questions per disease and relation."
)
@click.option(
    "--multi-fact",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Questions per disease asking for several relations at once.",
)
@click.option(
    "--reverse",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Questions per disease giving two symptoms and asking which diseases fit.",
)
@teacher_options(required=False, fallback="template answers")
def instructions(
    kg, output, seed, phrasings, multi_fact, reverse, teacher_url, teacher_model, api_key_env, cache_path
) -> None:
    """Write instruction records (instruction/input/output, Huatuo's format) generated from the graph KG.

    Answers come from templates that list the facts; with a teacher, a model behind an OpenAI-compatible
    endpoint rewrites each answer fluently from the same facts (kept in `facts` for knowledge recall).
    Every teacher answer is cached as it arrives: an interrupted run loses nothing, and running again
    makes no repeated calls.

    \b
    Examples:
      pixiu medical instructions kg.jsonl train.jsonl --seed 1 --phrasings 3
      pixiu medical instructions kg.jsonl train.jsonl --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b
    """
    from pixiu.files import write_jsonl
    from pixiu.teacher import TeacherCache
    from pixiu_medical.instructions import generate_instructions
    from pixiu_medical.kg import read_kg
    from pixiu_medical.teacher import answer_teacher, with_teacher_answers

    if bool(teacher_url) != bool(teacher_model):
        raise click.UsageError("--teacher-url and --teacher-model go together; give both, or neither for templates")
    records = generate_instructions(read_kg(kg), seed=seed, phrasings=phrasings, multi_fact=multi_fact, reverse=reverse)
    if teacher_url:
        cache_path = cache_for(output, cache_path)
        cache = TeacherCache(cache_path)
        teacher = answer_teacher(teacher_url, teacher_model, cache, api_key=api_key(api_key_env))
        click.echo(f"teacher {teacher.url} ({teacher_model}); {len(cache)} answers cached in {cache_path}", err=True)
        records = with_teacher_answers(records, teacher)
        click.echo(f"  teacher requests made: {teacher.calls}", err=True)
    write_jsonl(output, records)
    click.echo(f"{len(records)} instructions written to {output}")


@group.command(name="csv-to-jsonl")
@click.argument("csv_path", metavar="CSV", type=_IN)
@click.argument("output", type=_OUT)
def csv_to_jsonl(csv_path: Path, output: Path) -> None:
    """Convert a doctor–patient dialogue CSV (department,title,ask,answer; UTF-8 or GB18030) to JSONL records.

    \b
    Examples (Toyhom's Chinese-medical-dialogue-data):
      pixiu medical csv-to-jsonl 内科5000-33000.csv neike.jsonl
      pixiu domain train medical --data neike.jsonl
    """
    from pixiu.files import write_jsonl
    from pixiu_medical.dialogue import read_dialogue_csv

    rows = list(read_dialogue_csv(csv_path))
    write_jsonl(output, rows)
    click.echo(f"{len(rows)} records written to {output}")
