"""`train.report_to`: each step-log row and the final metrics mirrored to TensorBoard, W&B or MLflow, offline.

Each library is an extra: its test skips where it is not installed (CI installs none of them)."""

import json
from pathlib import Path

import pytest

from pixiu import tracking
from pixiu.config import load_config
from pixiu.errors import ConfigError
from pixiu.files import read_jsonl
from pixiu.recipes.lora_sft import run
from pixiu.tracking import MirroredLog, flat_figures, open_tracker, report_metrics
from toy_domain import TOY, write_toy_data

SMALL = ["data.max_seq_len=64", "train.batch_tokens=256", "data.eval_records=4", "eval.max_new_tokens=4"]
ROWS = [{"step": 1, "loss": 2.5, "tokens": 100.0, "lr": 1e-3}, {"step": 2, "loss": 1.5, "tokens": 90.0, "lr": 5e-4}]
METRICS = {"train": {"steps": 2, "final_loss": 1.5, "device": "cpu"}, "adapter": {"accuracy": 50.0, "records": 4}}


def test_report_to_names_a_known_tracker() -> None:
    assert load_config().train.report_to == "none"
    with pytest.raises(ConfigError, match=r"train\.report_to"):
        load_config(overrides=["train.report_to=comet"])


def test_a_missing_library_is_named_with_its_extra_before_any_model_work(tiny_model_dir, tmp_path, monkeypatch):
    find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else find_spec(name))
    config = load_config(overrides=[*SMALL, "train.report_to=wandb"], values={"base": str(tiny_model_dir)})
    with pytest.raises(ConfigError, match=r"pip install 'pixiu\[wandb\]'"):
        run(TOY, config, write_toy_data(tmp_path / "toy.jsonl", 8), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_flat_figures_keeps_the_numbers_by_path() -> None:
    assert flat_figures(METRICS) == {
        "train/steps": 2.0,
        "train/final_loss": 1.5,
        "adapter/accuracy": 50.0,
        "adapter/records": 4.0,
    }


def test_tensorboard_mirrors_a_training_run_step_by_step(tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    config = load_config(
        overrides=[*SMALL, "train.max_steps=3", "train.report_to=tensorboard"], values={"base": str(tiny_model_dir)}
    )
    run(TOY, config, write_toy_data(tmp_path / "toy.jsonl", 24), run_dir)
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    logged = read_jsonl(run_dir / "train_log.jsonl")
    losses = {event.step: event.value for event in events.Scalars("train/loss")}
    assert losses == {row["step"]: pytest.approx(row["loss"], rel=1e-6) for row in logged}
    metrics = flat_figures(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8")))
    final = {event.step: event.value for event in events.Scalars("train/final_loss")}
    assert final == {3: pytest.approx(metrics["train/final_loss"], rel=1e-6)}
    assert json.loads((run_dir / "tracking.json").read_text(encoding="utf-8"))["report_to"] == "tensorboard"


def mirror(report_to: str, run_dir: Path) -> str:
    """Write ROWS through a mirrored step log, then report METRICS, as a run does; the tracked run's id."""
    run_dir.mkdir()
    config = {"train": {"lr": 1e-3, "method": "sft"}}
    log = MirroredLog(
        (run_dir / "train_log.jsonl").open("a", encoding="utf-8"),
        open_tracker(report_to, run_dir, project="pixiu-toy", config=config),
    )
    for row in ROWS:
        log.write(json.dumps(row) + "\n")
    log.close()
    report_metrics(report_to, run_dir, project="pixiu-toy", config=config, metrics=METRICS)
    assert read_jsonl(run_dir / "train_log.jsonl") == ROWS  # the step log itself is unchanged
    return json.loads((run_dir / "tracking.json").read_text(encoding="utf-8"))["id"]


def test_mlflow_records_rows_and_metrics_in_one_run_in_pixiu_home(tmp_path, pixiu_home, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)  # restored after the test: the tracker sets it
    run_id = mirror("mlflow", tmp_path / "run")
    client = MlflowClient(tracking_uri=(pixiu_home / "mlruns").resolve().as_uri())
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss")] == [(1, 2.5), (2, 1.5)]
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "adapter/accuracy")] == [(2, 50.0)]
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.data.params["train/lr"] == "0.001"
    assert client.get_experiment(finished.info.experiment_id).name == "pixiu-toy"


def test_wandb_keeps_an_offline_run_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_id = mirror("wandb", tmp_path / "run")
    offline = sorted((tmp_path / "run" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert offline and all((folder / f"run-{run_id}.wandb").is_file() for folder in offline)
