"""The training recipe on a tiny model: run-directory contents, registry, and exact resume after SIGKILL."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from safetensors.torch import load_file

from pixiu.config import load_config
from pixiu.errors import PixiuError
from pixiu.evaluation import score_answers
from pixiu.files import read_jsonl
from pixiu.recipes.lora_sft import run
from pixiu.registry import list_adapters
from pixiu.runs import read_split
from toy_domain import TOY, write_toy_data

CHILD = Path(__file__).with_name("train_child.py")
SMALL = [
    "data.max_seq_len=64",
    "train.batch_tokens=256",
    "data.eval_records=4",
    "eval.max_new_tokens=4",
    "train.lr=1e-3",
]


def small_config(base, *extra):
    return load_config(overrides=[*SMALL, *extra], values={"base": str(base)})


def test_run_dir_explains_itself(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 40)
    run_dir = tmp_path / "run"
    summary = run(TOY, small_config(tiny_model_dir, "train.max_steps=6", "train.save_every=2"), data, run_dir)
    names = {p.name for p in run_dir.iterdir()}
    assert {
        "adapter_config.json",
        "adapter_model.safetensors",
        "pixiu_run.yaml",
        "metrics.json",
        "loss.png",
        "train_log.jsonl",
        "eval_split.jsonl",
        "predictions.jsonl",
        "general_predictions.jsonl",
        "report.html",
        "checkpoints",
    } <= names
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-0000004", "step-0000006"]
    record = yaml.safe_load((run_dir / "pixiu_run.yaml").read_text(encoding="utf-8"))
    assert record["status"] == "finished" and record["domain"] == "toy" and record["plugin_version"] == "0.0.1"
    assert record["base_model"] == str(tiny_model_dir) and "{%" in record["prompt_template"]
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics) == {"train", "records", "base", "adapter", "general"} and metrics["records"] == 4
    assert metrics["general"]["records"] == 40 and metrics["general"]["data"] == "bundled"
    assert len(read_jsonl(run_dir / "general_predictions.jsonl")) == 40
    assert summary.metrics == metrics
    held_out = read_split(run_dir / "eval_split.jsonl")
    assert [e.reference for e in held_out] == [e.messages[-1]["content"] for e in held_out]
    answers = [row["adapter"] for row in read_jsonl(run_dir / "predictions.jsonl")]
    assert score_answers(TOY, answers, held_out) == metrics["adapter"]  # reproducible from the run folder
    assert (run_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
    report = (run_dir / "report.html").read_text(encoding="utf-8")  # the before/after report of the run
    assert "Forgetting probe" in report and "nll_per_token" in report and "exact_match" in report
    assert report.count('src="data:image/png;base64,') == 2  # the loss curve; held-out and general scores
    assert list_adapters()[0].path == str(run_dir.resolve())


def test_existing_checkpoints_need_resume(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    config = small_config(tiny_model_dir, "train.max_steps=2", "data.eval_records=0")
    run(TOY, config, data, tmp_path / "run")
    with pytest.raises(PixiuError, match="--resume"):
        run(TOY, config, data, tmp_path / "run")


def train_in_child(*args):
    return subprocess.run([sys.executable, str(CHILD), *args], capture_output=True, text=True, timeout=300)


def test_sigkilled_run_resumes_exactly(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 60)
    common = ["--base", str(tiny_model_dir), "--data", str(data)]
    settings = [
        f"--set={s}"
        for s in [*SMALL, "train.max_steps=16", "train.save_every=5", "data.eval_records=0", "lora.dropout=0.1"]
    ]
    straight = train_in_child(*common, "--run-dir", str(tmp_path / "straight"), *settings)
    assert straight.returncode == 0, straight.stderr

    broken = tmp_path / "broken"
    killed = train_in_child(*common, "--run-dir", str(broken), "--die-at-step", "13", *settings)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (broken / "adapter_model.safetensors").exists()
    resumed = train_in_child(*common, "--run-dir", str(broken), "--resume", *settings)
    assert resumed.returncode == 0, resumed.stderr
    assert "at step 10" in " ".join(resumed.stderr.split())

    steps = [json.loads(line)["step"] for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 17))
    reference_log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    resumed_log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in resumed_log] == pytest.approx([r["loss"] for r in reference_log], rel=1e-5)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(broken / "adapter_model.safetensors"))
    assert expected.keys() == actual.keys()
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key


def test_training_warns_of_a_capped_held_out_split_and_of_cut_answers(tiny_model_dir, tmp_path):
    import io

    from rich.console import Console

    records = [{"q": f"第{i}个盒子是什么颜色？", "a": "红"} for i in range(11)] + [{"q": "长", "a": "红色。" * 200}]
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = io.StringIO()
    config = small_config(tiny_model_dir, "train.max_steps=1", "data.eval_records=10", "train.seed=1")
    run(TOY, config, data, tmp_path / "run", console=Console(file=out, width=400))
    text = " ".join(out.getvalue().split())
    assert "data.eval_records is 10, but only 6 of the 12 records are held out" in text
    held_out = {e.where for e in read_split(tmp_path / "run" / "eval_split.jsonl")}
    assert f"{data}:12" not in held_out  # seed 1 trains on the long answer
    assert f"1 of 6 training examples (the first at {data}:12) have answers longer than data.max_seq_len=64" in text


def test_a_second_training_into_a_locked_run_folder_is_refused(tiny_model_dir, tmp_path):
    from pixiu.files import locked
    from pixiu.training import LOCK_FILE

    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    run_dir = tmp_path / "run"
    with (
        locked(run_dir / LOCK_FILE),  # as the first training holds it
        pytest.raises(PixiuError, match=f"another training is writing into {run_dir}"),
    ):
        run(TOY, small_config(tiny_model_dir, "train.max_steps=2"), data, run_dir)
    assert not (run_dir / "train_log.jsonl").exists()


def test_a_data_error_leaves_no_empty_run_folder(tiny_model_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text("not json\n", encoding="utf-8")
    with pytest.raises(PixiuError, match="not valid JSON"):
        run(TOY, small_config(tiny_model_dir), data, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_corrupted_newest_checkpoint_falls_back_to_the_older_one(tiny_model_dir, tmp_path):
    import io

    from rich.console import Console

    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    config = small_config(tiny_model_dir, "train.max_steps=4", "train.save_every=2", "data.eval_records=0")
    run_dir = tmp_path / "run"
    run(TOY, config, data, run_dir)
    (run_dir / "checkpoints" / "step-0000004" / "state.pt").write_bytes(b"torn")
    said = io.StringIO()
    run(TOY, config, data, run_dir, resume=True, console=Console(file=said, width=400))
    text = " ".join(said.getvalue().split())
    assert "step-0000004/state.pt" not in text and "step-0000004 is unreadable" in text
    assert "resuming from the older checkpoint" in text and "at step 2" in text
    steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
