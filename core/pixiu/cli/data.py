"""`pixiu data ...`: make training data with a teacher model (self-instruct, self-chat, distillation)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pixiu.cli.hardware import PRECISIONS, check_device
from pixiu.cli.teacher import api_key, cache_for, teacher_options

if TYPE_CHECKING:
    from pixiu.distill import DomainPrompts
    from pixiu.domain import Messages

_OUT = click.Path(dir_okay=False, path_type=Path)
_IN = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(name="data")
def group() -> None:
    """Make training data with a teacher model behind any OpenAI-compatible endpoint.

    Every teacher answer is cached as it arrives (OUTPUT's name + .teacher-cache.jsonl): after Ctrl-C or a
    crash, the same command resumes, and a finished one run again asks nothing and writes the same file.

    \b
    Examples:
      pixiu data self-instruct --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b \\
          --num-instructions 500 --output alpaca.jsonl
      pixiu data self-chat --domain zhihu --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b \\
          --output chats.jsonl
      pixiu data distill law --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b --pairs \\
          --output pairs.jsonl
    """


def _teacher(url: str, model: str, api_key_env: str, cache_path: Path, max_tokens: int):
    """A teacher on `url` with its cache at `cache_path`, announced on stderr."""
    from pixiu.teacher import Teacher, TeacherCache

    cache = TeacherCache(cache_path)
    teacher = Teacher(url, model, cache, max_tokens=max_tokens, api_key=api_key(api_key_env))
    click.echo(f"teacher {teacher.url} ({model}); {len(cache)} answers cached in {cache_path}", err=True)
    return teacher


@group.command(name="self-instruct")
@click.option(
    "--seed-tasks",
    type=_IN,
    help="JSONL/JSON of seed tasks (instruction/input/output, or any record with an instruction, question or title "
    "field, e.g. a domain's crawled questions) [default: pixiu's 20 Chinese and English tasks].",
)
@click.option("--num-instructions", type=click.IntRange(min=1), required=True, help="New tasks to keep.")
@click.option("--output", type=_OUT, required=True, help="Alpaca JSONL written (instruction, input, output).")
@teacher_options(required=True, max_tokens=3072)
@click.option(
    "--in-context", type=click.IntRange(min=1, max=19), default=3, show_default=True, help="Tasks shown per request."
)
@click.option(
    "--language",
    type=click.Choice(["auto", "zh", "en"]),
    default="auto",
    show_default=True,
    help="Prompt language (BELLE's Chinese or Alpaca's English); auto follows the seeds' majority.",
)
@click.option("--similarity", type=click.FloatRange(0, 1), default=0.7, show_default=True, help="ROUGE-L bar.")
@click.option("--temperature", type=click.FloatRange(min=0), default=1.0, show_default=True)
@click.option("--top-p", type=click.FloatRange(0, 1), default=1.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds the choice of tasks shown.")
@click.option(
    "--max-requests", type=click.IntRange(min=1), help="Stop after this many requests [default: N, at least 10]."
)
def self_instruct(
    seed_tasks,
    num_instructions,
    output,
    teacher_url,
    teacher_model,
    api_key_env,
    cache_path,
    max_tokens,
    in_context,
    language,
    similarity,
    temperature,
    top_p,
    seed,
    max_requests,
) -> None:
    """Generate Alpaca tasks with self-instruct (Alpaca; BELLE's prompt for Chinese seeds).

    Each request shows the teacher a few tasks and asks it to continue the list; new tasks are dropped when
    they do not parse, are too short or long, mention what a text model cannot do (images, audio, files…),
    start with punctuation, or repeat (exactly, or ROUGE-L above --similarity) a kept or seed instruction.
    The counts per filter are written next to OUTPUT as OUTPUT's name + .stats.json.

    \b
    Examples:
      pixiu data self-instruct --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b \\
          --num-instructions 500 --output alpaca.jsonl
      pixiu data self-instruct --seed-tasks questions.jsonl --language zh --num-instructions 200 \\
          --teacher-url https://api.openai.com/v1 --teacher-model gpt-4o-mini --output law-tasks.jsonl
      pixiu domain train chat --data alpaca.jsonl
    """
    from pixiu.files import atomic_write_json, write_jsonl
    from pixiu.progress import count_progress
    from pixiu.self_instruct import read_seed_tasks, self_instruct, task_rows

    seeds = read_seed_tasks(seed_tasks)
    teacher = _teacher(teacher_url, teacher_model, api_key_env, cache_for(output, cache_path), max_tokens)
    with count_progress() as progress:
        task = progress.add_task("self-instruct", total=num_instructions)
        result = self_instruct(
            teacher,
            seeds,
            num_instructions=num_instructions,
            in_context=in_context,
            language=None if language == "auto" else language,
            seed=seed,
            temperature=temperature,
            top_p=top_p,
            similarity=similarity,
            max_requests=max_requests,
            on_kept=lambda n: progress.advance(task, n),
        )
    stats = {**result.stats(), "seed_tasks": len(seeds), "teacher_calls": teacher.calls}
    write_jsonl(output, task_rows(result.tasks))
    stats_path = output.with_name(output.stem + ".stats.json")
    atomic_write_json(stats_path, stats)
    dropped = ", ".join(f"{name} {count}" for name, count in stats["dropped"].items() if count) or "none"
    click.echo(f"{len(result.tasks)} tasks written to {output} ({result.requests} requests; dropped: {dropped})")
    click.echo(f"  teacher requests made: {teacher.calls}; counts in {stats_path}")
    if len(result.tasks) < num_instructions:
        click.echo(f"  stopped after {result.requests} requests; raise --max-requests for more", err=True)


@group.command(name="self-chat")
@click.option("--seeds", "seeds_path", type=_IN, help="Seed questions: a text file (one a line) or JSONL/JSON.")
@click.option("--domain", "domain_name", help="Use the last user turns of this domain's records as the seeds.")
@click.option("--data", "data_path", type=_IN, help="With --domain: its records [default: its sample data].")
@click.option("--output", type=_OUT, required=True, help="ShareGPT JSONL written (conversations, from human/gpt).")
@teacher_options(required=True, max_tokens=2048)
@click.option("--max-turns", type=click.IntRange(min=1), help="Keep at most this many exchanges per dialogue.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N seeds.")
@click.option("--temperature", type=click.FloatRange(min=0), default=0.0, show_default=True)
def self_chat(
    seeds_path,
    domain_name,
    data_path,
    output,
    teacher_url,
    teacher_model,
    api_key_env,
    cache_path,
    max_tokens,
    max_turns,
    limit,
    temperature,
) -> None:
    """Grow multi-turn dialogues from seed questions with self-chat (Baize).

    The teacher writes a whole [Human]/[AI] transcript about each seed in one answer; transcripts that do
    not parse are counted and dropped.

    \b
    Examples:
      pixiu data self-chat --seeds questions.txt --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b \\
          --max-turns 4 --output chats.jsonl
      pixiu data self-chat --domain zhihu --data raw.jsonl --teacher-url http://localhost:8000/v1 \\
          --teacher-model qwen2.5-7b --output zhihu-chats.jsonl
    """
    from pixiu.distill import domain_prompts, last_user_turn
    from pixiu.files import write_jsonl
    from pixiu.progress import count_progress
    from pixiu.self_chat import read_seeds, self_chat

    if bool(seeds_path) == bool(domain_name):
        raise click.UsageError("give the seeds with either --seeds FILE or --domain NAME")
    if data_path and not domain_name:
        raise click.UsageError("--data goes with --domain (seed files are given with --seeds)")
    if seeds_path:
        seeds = read_seeds(seeds_path)
    else:
        seeds = [last_user_turn(p) for p in domain_prompts(domain_name, data_path).prompts]
    seeds = [s for s in seeds if s][:limit] if limit else [s for s in seeds if s]
    teacher = _teacher(teacher_url, teacher_model, api_key_env, cache_for(output, cache_path), max_tokens)
    with count_progress() as progress:
        task = progress.add_task("self-chat", total=len(seeds))
        result = self_chat(
            teacher, seeds, max_turns=max_turns, temperature=temperature, on_seed=lambda: progress.advance(task)
        )
    write_jsonl(output, result.dialogues)
    click.echo(f"{len(result.dialogues)} dialogues written to {output}; {result.malformed} malformed dropped")
    click.echo(f"  teacher requests made: {teacher.calls}")


@group.command()
@click.argument("domain_name", metavar="DOMAIN")
@click.option("--data", "data_path", type=_IN, help="The domain's records [default: its sample data].")
@click.option("--output", type=_OUT, required=True, help="JSONL written: OpenAI messages rows, or pairs with --pairs.")
@teacher_options(required=True, max_tokens=1024)
@click.option(
    "--pairs",
    is_flag=True,
    help="Write TRL prompt/chosen/rejected rows: the teacher's answer chosen, the base model's greedy answer "
    "rejected (for `pixiu domain train DOMAIN --method dpo --data OUTPUT`).",
)
@click.option("--base", help="With --pairs: the student base model [default: the domain recipe's].")
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="With --pairs: longest student answer.")
@click.option("--limit", type=click.IntRange(min=1), help="Use only the first N records.")
@click.option(
    "--device", default="auto", show_default=True, callback=check_device, help="With --pairs: auto | cpu | cuda | mps."
)
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True)
def distill(
    domain_name,
    data_path,
    output,
    teacher_url,
    teacher_model,
    api_key_env,
    cache_path,
    max_tokens,
    pairs,
    base,
    max_new_tokens,
    limit,
    device,
    precision,
) -> None:
    """Have the teacher answer DOMAIN's prompts: SFT data, or preference pairs against the base model.

    A prompt is the domain formatter's messages up to the last user turn, system prompt included. With
    --pairs, the student's answers are cached too (OUTPUT's name + .student-cache.jsonl).

    \b
    Examples:
      pixiu data distill law --teacher-url http://localhost:8000/v1 --teacher-model qwen2.5-7b --output law-sft.jsonl
      pixiu data distill law --data cases.jsonl --pairs --teacher-url http://localhost:8000/v1 \\
          --teacher-model qwen2.5-7b --output law-pairs.jsonl
      pixiu domain train law --method dpo --data law-pairs.jsonl
    """
    from pixiu.distill import domain_prompts, sft_rows, teacher_answers
    from pixiu.files import write_jsonl
    from pixiu.progress import count_progress

    found = domain_prompts(domain_name, data_path)
    prompts = found.prompts[:limit] if limit else found.prompts
    teacher = _teacher(teacher_url, teacher_model, api_key_env, cache_for(output, cache_path), max_tokens)
    with count_progress() as progress:
        task = progress.add_task(f"teacher ({found.domain.name})", total=len(prompts))
        chosen = teacher_answers(teacher, prompts, on_answer=lambda: progress.advance(task))
    if not pairs:
        rows = sft_rows(prompts, chosen)
        write_jsonl(output, rows)
        left_out = len(prompts) - len(rows)
        click.echo(f"{len(rows)} examples written to {output}; {left_out} left out (blank, or cut at --max-tokens)")
        click.echo(f"  teacher requests made: {teacher.calls}")
        return
    rows, unpaired = _student_pairs(found, prompts, chosen, output, base, max_new_tokens, device, precision)
    write_jsonl(output, rows)
    click.echo(f"{len(rows)} pairs written to {output}; {unpaired} left out (a side blank or cut, or both the same)")
    click.echo(f"  teacher requests made: {teacher.calls}")


def _student_pairs(
    found: DomainPrompts,
    prompts: list[Messages],
    chosen: list[str],
    output: Path,
    base: str | None,
    max_new_tokens: int | None,
    device: str,
    precision: str,
) -> tuple[list[dict[str, Any]], int]:
    """Pair rows of the teacher's answers against the student base model's greedy ones, and the unpaired count."""
    from pixiu.devices import placement
    from pixiu.distill import pair_rows, student_answers
    from pixiu.models import load_base
    from pixiu.progress import count_progress
    from pixiu.teacher import TeacherCache

    target, dtype = placement(device, precision)  # type: ignore[arg-type]  # click checked the choice
    base = base or found.config.base
    args = found.config.eval.model_copy(update={"max_new_tokens": max_new_tokens or found.config.eval.max_new_tokens})
    cache = TeacherCache(output.with_name(output.stem + ".student-cache.jsonl"))
    with count_progress() as progress:
        task = progress.add_task(f"student ({base})", total=len(prompts))
        rejected = student_answers(
            lambda: load_base(base, dtype=dtype, device=target),
            base,
            prompts,
            cache,
            args,
            max_prompt_tokens=found.config.data.max_seq_len,
            on_batch=lambda n: progress.advance(task, n),
        )
    return pair_rows(prompts, chosen, rejected)
