"""Experiment tracking (`train.report_to`): TensorBoard, Weights & Biases or MLflow mirror a run's step log.

train_log.jsonl stays the source of truth: rank 0 writes each row there first, and the tracker gets exactly that
row (`MirroredLog`); the final metrics.json is sent once the run is evaluated (`report_metrics`). Every tracker
works offline: TensorBoard event files in RUN/tensorboard, a W&B offline run in RUN/wandb (unless WANDB_MODE says
otherwise), an MLflow file store in PIXIU_HOME/mlruns (unless MLFLOW_TRACKING_URI says otherwise). A resumed run
goes on with the same tracked run, whose id RUN/tracking.json keeps. The libraries are extras
(`pip install 'pixiu[tensorboard]'`), imported only when a run asks for one.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

from pixiu.errors import ConfigError
from pixiu.files import atomic_write_json
from pixiu.paths import pixiu_home

TRACKING_FILE = "tracking.json"
"""In the run folder: which tracker the run reports to and its id there, so that a resumed run continues it."""
LIBRARIES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}
"""`train.report_to` -> the module it needs, which is also the name of pixiu's extra that installs it."""


class Tracker(Protocol):
    """Where a run's figures are mirrored."""

    run_id: str
    """The run's id in the tracker, kept in RUN/tracking.json so that a resumed run continues it."""

    def log(self, figures: dict[str, float], step: int) -> None:
        """Record `figures` (flat names, numbers) at `step`."""

    def close(self) -> None:
        """Flush and let go; the run may be reopened later (a resume, the final metrics)."""


def check_tracker(report_to: str) -> None:
    """Raise `ConfigError` before any model work when `report_to` needs a library that is not installed."""
    module = LIBRARIES.get(report_to)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigError(
            [
                f"train.report_to={report_to} needs the {module} package, which is not installed: "
                f"pip install 'pixiu[{module}]' (or set train.report_to=none)"
            ]
        )


def open_tracker(report_to: str, run_dir: Path, *, project: str, config: dict[str, Any]) -> Tracker | None:
    """The tracker `report_to` names for the run in `run_dir` (a new tracked run, or the one it began), or None."""
    if report_to == "none":
        return None
    check_tracker(report_to)
    record_path = run_dir / TRACKING_FILE
    record = json.loads(record_path.read_text(encoding="utf-8")) if record_path.is_file() else {}
    if record.get("report_to") != report_to:
        record = {"report_to": report_to, "id": None}
    openers: dict[str, Callable[..., Tracker]] = {"tensorboard": _TensorBoard, "wandb": _Wandb, "mlflow": _Mlflow}
    tracker = openers[report_to](run_dir, project=project, config=config, run_id=record["id"])
    if record["id"] != tracker.run_id:
        atomic_write_json(record_path, {"report_to": report_to, "id": tracker.run_id})
    return tracker


def flat_figures(data: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a nested dict by slash-joined name (`eval/adapter/accuracy`); text, flags and None left out."""
    figures: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            figures.update(flat_figures(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            figures[name] = float(value)
    return figures


class MirroredLog(io.TextIOBase):
    """The step log file, each row written to it also sent to a tracker (after the file has it)."""

    def __init__(self, log: IO[str], tracker: Tracker):
        self._log, self._tracker, self._pending = log, tracker, ""

    def write(self, text: str) -> int:
        """Write `text` to the log; send each completed JSON row, by its `step`, to the tracker."""
        written = self._log.write(text)
        self._pending += text
        *rows, self._pending = self._pending.split("\n")
        for row in rows:
            if row.strip():
                figures = json.loads(row)
                step = int(figures.pop("step"))
                self._tracker.log({f"train/{k}": v for k, v in flat_figures(figures).items()}, step)
        return written

    def flush(self) -> None:
        """Flush the log file."""
        self._log.flush()

    def close(self) -> None:
        """Close the log file and the tracker."""
        if self.closed:
            return
        super().close()  # flushes first
        self._log.close()
        self._tracker.close()


def report_metrics(report_to: str, run_dir: Path, *, project: str, config: dict[str, Any], metrics: dict) -> None:
    """Send a finished run's metrics.json figures to its tracker, at its last step."""
    tracker = open_tracker(report_to, run_dir, project=project, config=config)
    if tracker is None:
        return
    step = int(metrics.get("train", {}).get("steps") or 0)
    tracker.log(flat_figures(metrics), step)
    tracker.close()


class _TensorBoard:
    """Scalars in TensorBoard event files under RUN/tensorboard (`tensorboard --logdir RUN/tensorboard`)."""

    def __init__(self, run_dir: Path, *, project: str, config: dict[str, Any], run_id: str | None):
        from torch.utils.tensorboard import SummaryWriter

        self.run_id = run_id or "tensorboard"
        self.writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if run_id is None:
            self.writer.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```")

    def log(self, figures: dict[str, float], step: int) -> None:
        for name, value in figures.items():
            self.writer.add_scalar(name, value, global_step=step)

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    """A Weights & Biases run in RUN/wandb, offline unless WANDB_MODE is set (`wandb sync RUN/wandb/offline-*`)."""

    def __init__(self, run_dir: Path, *, project: str, config: dict[str, Any], run_id: str | None):
        import wandb

        self.run_id = run_id or uuid.uuid4().hex[:12]
        mode: Any = os.environ.get("WANDB_MODE", "offline")  # wandb checks the value
        self.run = wandb.init(
            project=project,
            name=run_dir.name,
            id=self.run_id,
            resume="allow",
            dir=str(run_dir),
            mode=mode,
            config=config,
        )

    def log(self, figures: dict[str, float], step: int) -> None:
        self.run.log(figures, step=step)

    def close(self) -> None:
        self.run.finish()


class _Mlflow:
    """An MLflow run in experiment PROJECT of PIXIU_HOME/mlruns, or of MLFLOW_TRACKING_URI when set."""

    def __init__(self, run_dir: Path, *, project: str, config: dict[str, Any], run_id: str | None):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # MLflow 3 keeps its file store in maintenance mode, behind this opt-in; it needs no server
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (pixiu_home() / "mlruns").resolve().as_uri()
        self.client = MlflowClient(tracking_uri=uri)
        if run_id is None:
            experiment = self.client.get_experiment_by_name(project)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(project)
            run_id = self.client.create_run(experiment_id, run_name=run_dir.name).info.run_id
            params = [Param(k, str(v)[:500]) for k, v in _flat_config(config).items()]
            for start in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(run_id, params=params[start : start + 100])
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id

    def log(self, figures: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, step) for name, value in figures.items()]
        for start in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=metrics[start : start + 1000])

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as slash-joined keys and their values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(_flat_config(value, f"{prefix}{key}/"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
