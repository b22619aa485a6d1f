"""Every training run pixiu knows, for people to browse: the folders under PIXIU_HOME/runs and those the adapter
registry names, each with its status, cost, scores and loss curve, read from the files the run wrote.

A run's status follows from its files: `finished` once pixiu_run.yaml says so; `training` while a process holds
the run folder's lock (`pixiu.training.run_folder`), whether a terminal or a server started it; otherwise
`interrupted` when it has a checkpoint to `--resume` from, and `failed` when it has none.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pixiu.checkpoint import CHECKPOINTS
from pixiu.errors import PixiuError
from pixiu.paths import runs_dir
from pixiu.registry import list_adapters
from pixiu.report import VARIANTS, by_measure, cost_rows, prediction_rows, trained_rows
from pixiu.runs import LOG_FILE, METRICS_FILE, RUN_FILE, read_run_file

LOCK_FILE = ".pixiu.lock"
"""The lock a training holds on its run folder (`pixiu.training.LOCK_FILE`, kept here so listing needs no torch)."""
RUN_FILES = (RUN_FILE, METRICS_FILE, LOG_FILE, LOCK_FILE)
"""A folder under PIXIU_HOME/runs holding any of these is a run."""
MAX_PAGE = 100
"""The most predictions one page holds."""


@dataclass(frozen=True)
class RunRow:
    """One run as the runs list shows it."""

    id: str
    """The run's name in URLs: its folder's name (with a short hash of its path when two folders share a name)."""
    path: str
    domain: str
    base: str
    method: str
    status: str
    """training, finished, failed or interrupted."""
    steps: int
    """Optimiser steps logged so far."""
    max_steps: int | None
    tokens_per_second: float | None
    peak_memory_gib: float | None
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    """`{measure: {variant: value}}` on the held-out records."""
    registered_as: list[str] = field(default_factory=list)
    """The registry names this folder is registered under."""
    modified: str = ""
    """When the run last wrote a file, UTC ISO 8601."""


def run_folders() -> dict[str, Path]:
    """Every run folder, by id: those under PIXIU_HOME/runs holding a run file, then those the registry names."""
    found: list[Path] = []
    if runs_dir().is_dir():
        found += sorted(p for p in runs_dir().iterdir() if p.is_dir() and any((p / n).exists() for n in RUN_FILES))
    found += [Path(entry.path) for entry in list_adapters() if Path(entry.path).is_dir()]
    folders: dict[str, Path] = {}
    seen: set[Path] = set()
    for folder in found:
        if folder.resolve() in seen:
            continue
        seen.add(folder.resolve())
        name = folder.name
        if name in folders:  # another folder of that name came first (say, two --output .../run)
            name = f"{name}~{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]}"
        folders[name] = folder
    return folders


def find_run(run_id: str) -> Path:
    """The folder of the run `run_id` names; only listed runs are found, so no request reaches another path.

    Raises:
        PixiuError: No listed run has that id.
    """
    folder = run_folders().get(run_id)
    if folder is None:
        raise PixiuError(f"no run {run_id!r} under {runs_dir()} or in the adapter registry; list them at /runs")
    return folder


def run_status(folder: Path) -> str:
    """training, finished, failed or interrupted, decided from the folder's files and lock (see the module doc)."""
    if _record(folder).get("status") == "finished":
        return "finished"
    if is_locked(folder / LOCK_FILE):
        return "training"
    return "interrupted" if any((folder / CHECKPOINTS).glob("step-*")) else "failed"


def is_locked(lock: Path) -> bool:
    """Whether a process holds `lock` (an fcntl lock, as `pixiu.files.locked` takes it); False when it is missing.

    The probe takes a shared lock for an instant, which a training starting at that instant would find taken."""
    if not lock.is_file():
        return False
    with lock.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def read_log_rows(path: Path) -> list[dict[str, Any]]:
    """The complete rows of a train_log.jsonl (none when it is missing); a live run's half-written last line is
    left for the next read."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line.strip()]


def registered_names() -> dict[str, list[str]]:
    """The registry's names of each registered folder (resolved path), read once for a whole list."""
    names: dict[str, list[str]] = {}
    for entry in list_adapters():
        names.setdefault(str(Path(entry.path).resolve()), []).append(entry.name)
    return names


def run_row(run_id: str, folder: Path, registered: dict[str, list[str]]) -> RunRow:
    """The list row of one run; `registered` as `registered_names` gives it."""
    record, metrics = _record(folder), _metrics(folder)
    steps, tokens, seconds = _log_totals(str(folder / LOG_FILE), _stamp(folder / LOG_FILE))
    config = record.get("config") or {}
    train = metrics.get("train") or {}
    speed = train.get("tokens_per_second") or (round(tokens / seconds, 1) if seconds else None)
    memory = train.get("peak_memory")
    return RunRow(
        id=run_id,
        path=str(folder.resolve()),
        domain=str(record.get("domain", "?")),
        base=str(record.get("base_model") or config.get("base", "?")),
        method=str(train.get("method") or config.get("train", {}).get("method", "?")),
        status=run_status(folder),
        steps=steps if steps is not None else int(train.get("steps") or 0),
        max_steps=config.get("train", {}).get("max_steps"),
        tokens_per_second=speed,
        peak_memory_gib=memory.get("gib") if isinstance(memory, dict) else None,
        scores=by_measure({v: metrics[v] for v in VARIANTS if isinstance(metrics.get(v), dict)}),
        registered_as=sorted(set(registered.get(str(folder.resolve()), []))),
        modified=_modified(folder),
    )


def list_runs() -> list[dict[str, Any]]:
    """Every run's list row, the most recently written first."""
    registered = registered_names()
    rows = [run_row(run_id, folder, registered) for run_id, folder in run_folders().items()]
    return [asdict(row) for row in sorted(rows, key=lambda r: r.modified, reverse=True)]


def run_detail(run_id: str) -> dict[str, Any]:
    """One run: its list row, what was trained and what it cost (as the report lists them), its config, scores
    (held-out, the forgetting probe and the judge) and loss curve."""
    folder = find_run(run_id)
    record, metrics, log = _record(folder), _metrics(folder), read_log_rows(folder / LOG_FILE)
    config = record.get("config") or {}
    general = metrics.get("general") or {}
    return {
        **asdict(run_row(run_id, folder, registered_names())),
        "trained": trained_rows(record, config, str(record.get("base_model") or config.get("base", "?"))),
        "cost": cost_rows(metrics.get("train") or {}, log),
        "config": flat_config(record),
        "records": metrics.get("records"),
        "general": by_measure({v: general[v] for v in VARIANTS if isinstance(general.get(v), dict)}),
        "judge": metrics.get("judge"),
        "curve": curve(log),
        "has_report": (folder / "report.html").is_file(),
        "predictions": len(prediction_rows(folder)),
    }


def predictions_page(run_id: str, offset: int, limit: int) -> dict[str, Any]:
    """`limit` (at most `MAX_PAGE`) held-out predictions from `offset`, each beside its gold answer, and the total."""
    rows = prediction_rows(find_run(run_id))
    limit = max(1, min(limit, MAX_PAGE))
    return {"total": len(rows), "offset": offset, "limit": limit, "rows": rows[offset : offset + limit]}


def compare_runs(run_ids: list[str]) -> dict[str, Any]:
    """Two or more runs side by side: their rows, the config keys whose values differ, every score per run, and
    their loss curves.

    Raises:
        PixiuError: Fewer than two distinct runs are given, or one is not listed.
    """
    ids = list(dict.fromkeys(run_ids))
    if len(ids) < 2:
        raise PixiuError(f"compare needs two or more different runs, got {', '.join(ids) or 'none'}")
    folders = {run_id: find_run(run_id) for run_id in ids}
    configs = [flat_config(_record(folder)) for folder in folders.values()]
    keys = sorted({key for config in configs for key in config})
    differ = [
        {"key": key, "values": [config.get(key) for config in configs]}
        for key in keys
        if len({json.dumps(config.get(key), sort_keys=True) for config in configs}) > 1
    ]
    registered = registered_names()
    rows = [run_row(run_id, folder, registered) for run_id, folder in folders.items()]
    measures = sorted({measure for row in rows for measure in row.scores})
    return {
        "runs": [asdict(row) for row in rows],
        "config_diff": differ,
        "config_same": len(keys) - len(differ),
        "scores": [{"measure": m, "values": [row.scores.get(m, {}) for row in rows]} for m in measures],
        "curves": [{"id": run_id, **curve(read_log_rows(folder / LOG_FILE))} for run_id, folder in folders.items()],
    }


def flat_config(record: dict[str, Any]) -> dict[str, Any]:
    """A run record's domain, base, data and versions, and its config as dotted keys (`train.lr`)."""
    flat: dict[str, Any] = {k: record[k] for k in ("domain", "base_model", "data", "plugin_version") if k in record}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = value

    walk("", record.get("config") or {})
    return flat


def curve(log: list[dict[str, Any]]) -> dict[str, list[float]]:
    """A log's loss per step as two columns, `{"step": [...], "loss": [...]}`."""
    rows = [r for r in log if isinstance(r.get("loss"), int | float)]
    return {"step": [r["step"] for r in rows], "loss": [r["loss"] for r in rows]}


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten or appended to (inode, size, mtime), or None when it is missing."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _record(folder: Path) -> dict[str, Any]:
    """A run's pixiu_run.yaml (parsed once per version of the file: the list is read every few seconds)."""
    return _parsed_record(str(folder), _stamp(folder / RUN_FILE))


@functools.lru_cache(maxsize=1024)
def _parsed_record(folder: str, stamp: tuple[int, int, int] | None) -> dict[str, Any]:
    """`read_run_file` of `folder`, cached by the file's `stamp`."""
    return read_run_file(Path(folder))


def _metrics(folder: Path) -> dict[str, Any]:
    """A run's metrics.json, or nothing before it is written (parsed once per version of the file)."""
    return _parsed_metrics(str(folder / METRICS_FILE), _stamp(folder / METRICS_FILE))


@functools.lru_cache(maxsize=1024)
def _parsed_metrics(path: str, stamp: tuple[int, int, int] | None) -> dict[str, Any]:
    """The JSON at `path` (nothing when it is missing), cached by the file's `stamp`."""
    return json.loads(Path(path).read_text(encoding="utf-8")) if stamp else {}


@functools.lru_cache(maxsize=1024)
def _log_totals(path: str, stamp: tuple[int, int, int] | None) -> tuple[int | None, float, float]:
    """A train log's last step (None before the first), tokens and seconds, summed once per version of it."""
    rows = read_log_rows(Path(path)) if stamp else []
    tokens, seconds = sum(r.get("tokens", 0) for r in rows), sum(r.get("seconds", 0.0) for r in rows)
    return (int(rows[-1]["step"]) if rows else None), tokens, seconds


def _modified(folder: Path) -> str:
    """When the run last wrote one of its files (or the folder changed), UTC ISO 8601."""
    times = [p.stat().st_mtime for p in (folder, *(folder / n for n in RUN_FILES)) if p.exists()]
    return datetime.fromtimestamp(max(times), timezone.utc).isoformat(timespec="seconds")
