"""`train.max_minutes`: an sft run stops at its wall-clock budget with a checkpoint, and resumes from it."""

import json

import pytest

from pixiu.config import load_config
from pixiu.errors import ConfigError
from pixiu.recipes.lora_sft import run
from toy_domain import TOY, write_toy_data

SMALL = ["data.max_seq_len=64", "train.batch_tokens=256", "data.eval_records=4", "eval.max_new_tokens=4"]


def test_a_spent_time_budget_stops_after_the_step_with_a_checkpoint_and_resumes(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    run_dir = tmp_path / "run"
    budget = ["train.max_steps=4", "train.save_every=10", "train.max_minutes=1e-9"]  # spent by the first step
    config = load_config(overrides=[*SMALL, *budget], values={"base": str(tiny_model_dir)})
    summary = run(TOY, config, data, run_dir)
    assert summary.metrics["train"]["steps"] == 1 and summary.metrics["records"] == 4  # saved and evaluated
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-0000001"]
    assert (run_dir / "adapter_model.safetensors").is_file()

    run(
        TOY,
        config.model_copy(update={"train": config.train.model_copy(update={"max_minutes": None})}),
        data,
        run_dir,
        resume=True,
    )
    steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_only_sft_takes_a_time_budget():
    with pytest.raises(ConfigError, match=r"honoured by train\.method=sft only"):
        load_config(overrides=["train.max_minutes=5", "train.method=dpo"])
