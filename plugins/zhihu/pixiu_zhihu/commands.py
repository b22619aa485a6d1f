"""`pixiu zhihu …`: the zhihu domain's own verbs (references, preference pairs, CSL conversion)."""

from __future__ import annotations

from pathlib import Path

import click

from pixiu import BadRecord, PixiuError
from pixiu.cli.teacher import api_key, cache_for, teacher_options
from pixiu_zhihu.pairs import DEFAULT_MARGIN, DEFAULT_MAX_PAIRS, DEFAULT_RATIO

_IN = click.Path(exists=True, dir_okay=False, path_type=Path)
_OUT = click.Path(dir_okay=False, path_type=Path)


@click.group(name="zhihu")
def group() -> None:
    """Zhihu summarisation data: reference summaries, preference pairs, CSL conversion.

    \b
    Examples, from a crawl to a trained adapter:
      pixiu domain crawl zhihu --arg question_ids=19550225 --output raw.jsonl
      pixiu zhihu references raw.jsonl train.jsonl --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b
      pixiu domain train zhihu --data train.jsonl
      pixiu zhihu pairs raw.jsonl pairs.jsonl --margin 20
    """


@group.command()
@click.argument("raw", type=_IN)
@click.argument("output", type=_OUT)
@teacher_options(required=False, fallback="silver")
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Most up-voted answers a summary is drawn from.",
)
def references(raw, output, teacher_url, teacher_model, api_key_env, cache_path, top_k) -> None:
    """Write RAW's questions to OUTPUT with a reference `summary` each: the user's, a teacher's, or a silver one.

    A `summary` already in a record wins. Otherwise the teacher model writes one; every answer is cached
    as it arrives, so an interrupted run loses nothing and a second run makes no repeated calls. Without a
    teacher, extractive sentences (jieba TextRank) are used and labelled `"reference": "silver"`.

    \b
    Examples:
      pixiu zhihu references raw.jsonl train.jsonl                # silver summaries, offline
      pixiu zhihu references raw.jsonl train.jsonl --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b
    """
    from pixiu.teacher import TeacherCache
    from pixiu_zhihu.references import fill_references
    from pixiu_zhihu.teacher import summary_teacher

    if bool(teacher_url) != bool(teacher_model):
        raise click.UsageError("--teacher-url and --teacher-model go together; give both, or neither for silver")
    teacher = None
    if teacher_url:
        cache_path = cache_for(output, cache_path)
        cache = TeacherCache(cache_path)
        teacher = summary_teacher(teacher_url, teacher_model, cache, api_key=api_key(api_key_env))
        click.echo(f"teacher {teacher.url} ({teacher_model}); {len(cache)} summaries cached in {cache_path}", err=True)
    counts = fill_references(raw, output, teacher=teacher, top_k=top_k)
    written = sum(n for kind, n in counts.items() if not kind.startswith("skipped"))
    click.echo(f"{written} questions written to {output}")
    for kind, n in sorted(counts.items()):
        click.echo(f"  {kind}: {n}")
    if teacher is not None:
        click.echo(f"  teacher requests made: {teacher.calls}")


@group.command()
@click.argument("raw", type=_IN)
@click.argument("output", type=_OUT)
@click.option(
    "--margin",
    type=click.IntRange(min=1),
    default=DEFAULT_MARGIN,
    show_default=True,
    help="The chosen answer needs at least this many more up-votes.",
)
@click.option(
    "--ratio",
    type=click.FloatRange(min=1.0),
    default=DEFAULT_RATIO,
    show_default=True,
    help="…and at least this many times the rejected answer's up-votes.",
)
@click.option(
    "--max-pairs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PAIRS,
    show_default=True,
    help="Pairs per question at most.",
)
def pairs(raw, output, margin, ratio, max_pairs) -> None:
    """Write preference pairs (prompt/chosen/rejected JSONL) from the votes of RAW's answers.

    Within one question, an answer is `chosen` over another when it has at least MARGIN more up-votes
    and RATIO times as many. The output suits reward-model or DPO training (e.g. TRL).

    \b
    Examples:
      pixiu zhihu pairs raw.jsonl pairs.jsonl
      pixiu zhihu pairs raw.jsonl pairs.jsonl --margin 20 --ratio 2 --max-pairs 3
    """
    from pixiu.files import write_jsonl
    from pixiu.records import iter_raw_records
    from pixiu_zhihu.pairs import preference_pairs

    rows = []
    questions = 0
    for where, _, record in iter_raw_records(raw):
        if isinstance(record, BadRecord):
            raise PixiuError(f"{where}: {record}; expected one record per line")
        if not isinstance(record, dict) or not isinstance(record.get("answers"), list):
            continue
        found = preference_pairs(record, margin=margin, ratio=ratio, max_pairs=max_pairs)
        questions += bool(found)
        rows += found
    write_jsonl(output, rows)
    written = len(rows)
    click.echo(f"{written} pairs from {questions} questions written to {output}")


@group.command(name="csl-to-jsonl")
@click.argument("tsv", type=_IN)
@click.argument("output", type=_OUT)
def csl_to_jsonl(tsv, output) -> None:
    """Convert a CSL title-generation TSV (prompt, abstract, title) to JSONL records the formatter reads.

    \b
    Examples (CSL's benchmark/ts files):
      pixiu zhihu csl-to-jsonl csl_ts_dev.tsv csl_dev.jsonl
      pixiu domain train zhihu --data csl_dev.jsonl
    """
    from pixiu.files import write_jsonl
    from pixiu_zhihu.csl import read_csl_tsv

    rows = list(read_csl_tsv(tsv))
    write_jsonl(output, rows)
    click.echo(f"{len(rows)} records written to {output}")
