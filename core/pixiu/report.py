"""A run's before/after report: one self-contained HTML file a person reads instead of metrics.json.

It shows what was trained (domain, base, method, data, key settings), what it cost (time, steps, speed,
memory, device), the loss curve, base vs adapter on the domain's held-out records, the forgetting probe,
the LLM judge when one was run, and a few held-out answers side by side. Charts are PNGs inside the file
and every text is HTML-escaped, so it opens anywhere, offline, and shows no one's markup.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from pixiu.errors import PixiuError
from pixiu.files import atomic_write_text, read_jsonl
from pixiu.plots import loss_curve_png, read_log, variant_bars_png
from pixiu.runs import (
    EVAL_SPLIT_FILE,
    GENERAL_PREDICTIONS_FILE,
    LOG_FILE,
    LOSS_PLOT_FILE,
    METRICS_FILE,
    PREDICTIONS_FILE,
    REPORT_FILE,
    read_run_file,
)

VARIANTS = ("base", "adapter", "chosen")
"""The scored variants a metrics.json may hold, in the order the report shows them."""
EXAMPLES_SHOWN = 6
"""Held-out examples (and general questions) shown side by side."""
PROMPT_CHARS = 600
"""A longer prompt is shown cut to this many characters."""
SETTINGS = {
    "lora": ("r", "alpha", "dropout", "target_modules", "quantize"),
    "data": ("max_seq_len", "eval_records", "max_records"),
    "train": ("max_steps", "lr", "warmup_steps", "batch_tokens", "seed", "init_adapter"),
}
"""The recorded settings the report lists under "what was trained"."""


def write_report(run_dir: Path) -> Path:
    """Build the run folder's report.html from its files (pixiu_run.yaml, metrics.json, train_log.jsonl,
    predictions); return its path.

    Raises:
        PixiuError: The folder holds neither pixiu_run.yaml nor metrics.json, so it is not a pixiu run.
    """
    run_dir = Path(run_dir)
    path = run_dir / REPORT_FILE
    atomic_write_text(path, render_report(run_dir))
    return path


def render_report(run_dir: Path) -> str:
    """The report of `run_dir` as one HTML page."""
    import jinja2

    context = report_context(Path(run_dir))
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("report.html.j2").render(**context)


def report_context(run_dir: Path) -> dict[str, Any]:
    """Everything the report shows, read from the run folder's files (missing ones leave their section out)."""
    record = read_run_file(run_dir)
    metrics_path = run_dir / METRICS_FILE
    if not record and not metrics_path.is_file():
        raise PixiuError(
            f"{run_dir} holds neither pixiu_run.yaml nor metrics.json; pass the folder of a pixiu training run"
        )
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else {}
    config = record.get("config") or {}
    train = metrics.get("train", {})
    log = read_log(run_dir / LOG_FILE) if (run_dir / LOG_FILE).is_file() else []
    domain = record.get("domain", "?")
    base = record.get("base_model") or config.get("base", "?")
    scores = by_measure({v: metrics[v] for v in VARIANTS if isinstance(metrics.get(v), dict)})
    general = metrics.get("general")
    general_measures = by_measure({v: general[v] for v in VARIANTS if v in general}) if general else {}
    return {
        "title": f"{domain} · {train.get('method') or config.get('train', {}).get('method', '?')} · {run_dir.name}",
        "run_dir": str(run_dir.resolve()),
        "status": record.get("status", "?"),
        "trained": trained_rows(record, config, base),
        "cost": cost_rows(train, log),
        "loss_chart": _loss_chart(run_dir, log, f"{domain} on {base}"),
        "records": metrics.get("records"),
        "variants": [v for v in VARIANTS if isinstance(metrics.get(v), dict)],
        "scores": scores,
        "scores_chart": _chart(
            {**scores, **{f"general: {name}": values for name, values in general_measures.items()}},
            "base vs adapter (general: the forgetting probe)",
        ),
        "general": general,
        "general_variants": [v for v in VARIANTS if general and v in general],
        "general_measures": general_measures,
        "judge": metrics.get("judge"),
        "examples": _examples(run_dir),
        "general_examples": _rows(run_dir / GENERAL_PREDICTIONS_FILE)[:EXAMPLES_SHOWN],
    }


def trained_rows(record: dict[str, Any], config: dict[str, Any], base: str) -> list[tuple[str, str]]:
    """(label, value) rows: domain, base, method, data and the key settings of the run."""
    rows = [
        ("domain", f"{record.get('domain', '?')} (plugin {record.get('plugin_version', '?')})"),
        ("base model", str(base)),
        ("method", str(config.get("train", {}).get("method", "?"))),
        ("data", str(record.get("data", "?"))),
        ("pixiu", str(record.get("pixiu_version", "?"))),
    ]
    for section, keys in SETTINGS.items():
        values = config.get(section, {})
        shown = [f"{key}={values[key]}" for key in keys if values.get(key) is not None]
        if shown:
            rows.append((section, ", ".join(shown)))
    return rows


def cost_rows(train: dict[str, Any], log: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(label, value) rows: training time, steps, tokens, speed, peak memory and hardware."""
    rows = []
    if log:
        seconds = sum(r.get("seconds", 0.0) for r in log)
        rows.append(("training time", f"{seconds:.1f} s over {len(log)} logged steps"))
        rows.append(("tokens trained", f"{sum(r.get('tokens', 0) for r in log):,.0f}"))
    labels = {"steps": "steps", "final_loss": "final loss", "tokens_per_second": "tokens/s", "examples": "examples"}
    rows += [(label, str(train[key])) for key, label in labels.items() if train.get(key) is not None]
    memory = train.get("peak_memory")
    if isinstance(memory, dict) and "gib" in memory:
        rows.append(("peak memory", f"{memory['gib']} GiB ({memory.get('kind', '?')})"))
    hardware = [str(train[key]) for key in ("device", "precision") if train.get(key)]
    if hardware:
        rows.append(("device / precision", " / ".join(hardware)))
    if train.get("rejected_records"):
        rows.append(("rejected records", str(train["rejected_records"])))
    return rows


def by_measure(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """`{variant: {measure: value}}` turned to `{measure: {variant: value}}`, numbers only."""
    measures: dict[str, dict[str, float]] = {}
    for variant, values in scores.items():
        for measure, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                measures.setdefault(measure, {})[variant] = float(value)
    return measures


def _chart(measures: dict[str, dict[str, float]], title: str) -> str | None:
    """A bar chart of the measures as a data URI, or None when there is nothing to draw."""
    return _data_uri(variant_bars_png(measures, title)) if measures else None


def _loss_chart(run_dir: Path, log: list[dict[str, Any]], title: str) -> str | None:
    """The run's loss.png (drawn by its recipe) as a data URI, else one drawn from its log, else None."""
    if (run_dir / LOSS_PLOT_FILE).is_file():
        return _data_uri((run_dir / LOSS_PLOT_FILE).read_bytes())
    return _data_uri(loss_curve_png(log, title)) if log else None


def _data_uri(png: bytes) -> str:
    """PNG bytes as a `data:` URI, so the page needs no file beside it."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSONL file the run wrote, or none when it is missing."""
    return read_jsonl(path) if path.is_file() else []


def _examples(run_dir: Path) -> list[dict[str, Any]]:
    """The first held-out predictions, each with its prompt cut to `PROMPT_CHARS`."""
    return prediction_rows(run_dir, PROMPT_CHARS)[:EXAMPLES_SHOWN]


def prediction_rows(run_dir: Path, prompt_chars: int | None = None) -> list[dict[str, Any]]:
    """Every held-out prediction of a run (where, prompt, gold, each variant's answer), its prompt taken from
    eval_split.jsonl and cut to `prompt_chars` characters when given."""
    prompts = {}
    for row in _rows(run_dir / EVAL_SPLIT_FILE):
        text = "\n\n".join(m["content"] for m in row.get("messages", [])[:-1] if m.get("role") != "system")
        cut = prompt_chars is not None and len(text) > prompt_chars
        prompts[row.get("where")] = text[:prompt_chars] + " …" if cut else text
    return [
        {
            "where": row.get("where", ""),
            "prompt": prompts.get(row.get("where"), ""),
            "gold": row.get("gold", ""),
            "answers": {v: row[v] for v in VARIANTS if isinstance(row.get(v), str)},
        }
        for row in _rows(run_dir / PREDICTIONS_FILE)
    ]
