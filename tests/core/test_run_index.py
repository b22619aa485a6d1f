"""The runs index on fabricated run folders: statuses from files and locks, registry runs, confinement, paging,
comparison; and one real tiny run read back."""

from pathlib import Path

import pytest

from pixiu import run_index
from pixiu.errors import PixiuError
from pixiu.files import locked
from pixiu.paths import runs_dir
from pixiu.registry import register_adapter
from run_folders import fake_run


def test_status_comes_from_the_run_files_and_its_lock() -> None:
    finished = fake_run(runs_dir() / "toy-1")
    training = fake_run(runs_dir() / "toy-2", status="training")
    interrupted = fake_run(runs_dir() / "toy-3", status="training", checkpoint=True)
    failed = fake_run(runs_dir() / "toy-4", status="training")
    (training / run_index.LOCK_FILE).touch()
    (failed / run_index.LOCK_FILE).touch()  # left behind, held by no one
    with locked(training / run_index.LOCK_FILE, blocking=False):
        statuses = {row["id"]: row["status"] for row in run_index.list_runs()}
        assert statuses == {"toy-1": "finished", "toy-2": "training", "toy-3": "interrupted", "toy-4": "failed"}
    assert run_index.run_status(training) == "failed"  # the lock released and no checkpoint: it died
    assert run_index.run_status(finished) == "finished" and run_index.run_status(interrupted) == "interrupted"


def test_the_lock_file_is_the_one_training_takes() -> None:
    from pixiu.training import LOCK_FILE

    assert run_index.LOCK_FILE == LOCK_FILE


def test_a_row_has_steps_speed_memory_and_scores() -> None:
    fake_run(runs_dir() / "toy-1", steps=4)
    fake_run(runs_dir() / "toy-2", status="training", steps=2)
    rows = {row["id"]: row for row in run_index.list_runs()}
    done = rows["toy-1"]
    assert (done["steps"], done["max_steps"], done["tokens_per_second"], done["peak_memory_gib"]) == (4, 10, 200.0, 0.5)
    assert done["scores"] == {"exact_match": {"base": 0.0, "adapter": 0.5}}
    live = rows["toy-2"]  # no metrics.json yet: speed from the log so far
    assert (live["steps"], live["tokens_per_second"], live["scores"]) == (2, 200.0, {})
    assert run_index.run_detail("toy-1")["curve"] == {"step": [1, 2, 3, 4], "loss": [2.5, 2.0, 1.5, 1.0]}


def test_registry_runs_outside_home_are_listed_and_same_names_get_told_apart(tmp_path: Path) -> None:
    fake_run(runs_dir() / "run")
    elsewhere = fake_run(tmp_path / "elsewhere" / "run")
    register_adapter("toy", "toy", elsewhere, "tiny", {})
    register_adapter("toy", "toy", runs_dir() / "run", "tiny", {})  # the same folder is listed once
    folders = run_index.run_folders()
    assert len(folders) == 2 and folders["run"] == runs_dir() / "run"
    (other,) = [run_id for run_id in folders if run_id != "run"]
    assert other.startswith("run~") and folders[other] == elsewhere
    assert run_index.run_detail(other)["registered_as"] == ["toy"]


@pytest.mark.parametrize("name", ["../runs", "..", "/etc", "../x", "toy-1/../../x", "", ".", "toy-1/"])
def test_only_listed_runs_are_found(name: str, tmp_path: Path) -> None:
    fake_run(runs_dir() / "toy-1")
    fake_run(runs_dir().parent / "x")  # a folder in PIXIU_HOME, but not a run of it
    with pytest.raises(PixiuError, match="no run"):
        run_index.find_run(name)


def test_a_live_logs_half_written_line_waits(tmp_path: Path) -> None:
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo', encoding="utf-8")
    assert run_index.read_log_rows(log) == [{"step": 1, "loss": 2.0}]


def test_predictions_are_paged_beside_gold_and_prompt() -> None:
    fake_run(runs_dir() / "toy-1", predictions=7)
    page = run_index.predictions_page("toy-1", offset=5, limit=5)
    assert (page["total"], page["offset"], len(page["rows"])) == (7, 5, 2)
    assert page["rows"][0] == {
        "where": "d:5",
        "prompt": "q5",
        "gold": "a5",
        "answers": {"base": "b5", "adapter": "x5"},
    }
    assert run_index.predictions_page("toy-1", offset=0, limit=10_000)["limit"] == run_index.MAX_PAGE


def test_compare_gives_the_config_diff_scores_and_curves() -> None:
    fake_run(runs_dir() / "a", lr=1e-3, steps=3)
    fake_run(runs_dir() / "b", lr=2e-4, steps=2, scores={"adapter": {"exact_match": 0.75, "rouge_l": 0.2}})
    compared = run_index.compare_runs(["a", "b", "a"])
    assert [run["id"] for run in compared["runs"]] == ["a", "b"]
    assert compared["config_diff"] == [{"key": "train.lr", "values": [1e-3, 2e-4]}] and compared["config_same"] > 3
    assert compared["scores"] == [
        {"measure": "exact_match", "values": [{"base": 0.0, "adapter": 0.5}, {"adapter": 0.75}]},
        {"measure": "rouge_l", "values": [{}, {"adapter": 0.2}]},
    ]
    assert [c["step"] for c in compared["curves"]] == [[1, 2, 3], [1, 2]]
    with pytest.raises(PixiuError, match="two or more"):
        run_index.compare_runs(["a", "a"])


def test_a_real_tiny_run_reads_back(tiny_model_dir: Path, tmp_path: Path) -> None:
    from pixiu.config import load_config
    from pixiu.recipes.lora_sft import run
    from toy_domain import TOY, write_toy_data

    data = write_toy_data(tmp_path / "toy.jsonl", 16)
    overrides = ["data.max_seq_len=64", "train.batch_tokens=256", "data.eval_records=3", "eval.max_new_tokens=2"]
    overrides += ["eval.general=false"]  # the forgetting probe is not what this test reads
    config = load_config(overrides=[*overrides, "train.max_steps=3"], values={"base": str(tiny_model_dir)})
    run(TOY, config, data, runs_dir() / "toy-real")
    detail = run_index.run_detail("toy-real")
    assert (detail["status"], detail["domain"], detail["steps"], detail["method"]) == ("finished", "toy", 3, "sft")
    assert detail["registered_as"] == ["toy"] and detail["has_report"] and detail["predictions"] == 3
    assert len(detail["curve"]["loss"]) == 3 and {"base", "adapter"} <= set(detail["scores"]["exact_match"])
    assert detail["peak_memory_gib"] is not None and detail["tokens_per_second"] > 0
    assert dict(detail["trained"])["base model"] == str(tiny_model_dir)
    row = run_index.predictions_page("toy-real", 0, 20)["rows"][0]
    assert row["prompt"] and row["gold"] and set(row["answers"]) == {"base", "adapter"}
