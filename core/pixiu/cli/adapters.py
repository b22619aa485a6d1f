"""`pixiu adapters ...`: the registry of trained adapters."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from pixiu.cli.output import print_rows


@click.group(name="adapters")
def group() -> None:
    """Inspect trained adapters (newest of a name wins; older ones are kept).

    \b
    Examples:
      pixiu adapters list
      pixiu adapters list --json
      pixiu adapters merge law --output ./law-merged
      pixiu adapters report law                       # rebuild the run's report.html
    """


@group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of a table.")
def list_adapters_command(as_json: bool) -> None:
    """List registered adapters, newest first, with each one's tuning method and how `pixiu serve` serves it:
    per_row (in the mixed batch), single (through peft, one adapter per forward pass), base (a whole model: serve
    it with --base), no, or missing (its folder is gone).

    \b
    Examples:
      pixiu adapters list
      pixiu adapters list --json                      # with each adapter's domain and scores
    """
    from pixiu.registry import list_adapters

    rows = [{**asdict(entry), **_serving(Path(entry.path))} for entry in list_adapters()]
    empty = "No adapters yet: train one with `pixiu domain train DOMAIN`."
    print_rows(rows, ["name", "created", "method", "served", "base", "path"], as_json=as_json, empty=empty)


def _serving(folder: Path) -> dict[str, str | None]:
    """The `lora.method` of a registered run folder and how `pixiu serve` serves it (see `pixiu.methods.serving`)."""
    from pixiu.methods import adapter_method, serving

    if not folder.is_dir():
        return {"method": None, "served": "missing"}
    method = adapter_method(folder)
    return {"method": method, "served": serving(folder)}


@group.command(name="merge")
@click.argument("name")
@click.option(
    "--output", required=True, type=click.Path(file_okay=False), help="New (or empty) folder for the merged model."
)
@click.option("--base", help="Base model the adapter was trained on [default: the one it records].")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="Number format the base is loaded, merged and saved in.",
)
def merge_command(name: str, output: str, base: str | None, precision: str) -> None:
    """Merge adapter NAME (a registered name or a folder) into its base: a plain Hugging Face model folder
    (weights, config, generation config, tokenizer) that vLLM, llama.cpp converters or transformers load
    without peft.

    \b
    Examples:
      pixiu adapters merge law --output ./law-merged
      pixiu adapters merge ~/.pixiu/runs/law-20250101-120000 --output ./law-bf16 --precision bf16
    """
    from pathlib import Path

    from pixiu.devices import DTYPES
    from pixiu.errors import PixiuError
    from pixiu.merge import merge_adapter
    from pixiu.registry import list_adapters, resolve_adapter
    from pixiu.serve.server import recorded_base

    folder = resolve_adapter(name)
    registered = next((e.base for e in list_adapters() if Path(e.path).resolve() == folder.resolve()), None)
    base = base or registered or recorded_base(folder)
    if base is None:
        raise PixiuError(f"the adapter in {folder} records no base model; pass --base")
    click.echo(f"merging {folder} into {base} ({precision})...", err=True)
    merged = merge_adapter(folder, Path(output), base=base, dtype=DTYPES[precision])
    click.echo(str(merged))


@group.command(name="report")
@click.argument("name")
def report_command(name: str) -> None:
    """Rebuild the before/after report of adapter NAME (a registered name or any run folder): report.html in its
    run folder, one self-contained page with what was trained, its cost, the loss curve, base vs adapter scores,
    the forgetting probe, the judge's verdicts when `pixiu domain judge` ran, and held-out answers side by side.
    Every training run writes it at its end; this command rebuilds it from the folder's files.

    \b
    Examples:
      pixiu adapters report law
      pixiu adapters report ~/.pixiu/runs/law-20250101-120000
    """
    from pathlib import Path

    from pixiu.registry import resolve_adapter
    from pixiu.report import write_report

    folder = Path(name).expanduser()
    click.echo(str(write_report(folder if folder.is_dir() else resolve_adapter(name))))
