"""AdamW's state in checkpoints under the sharded strategies: the index/name keyings, a real 2-process FSDP run on
the CPU (gloo) that gathers and scatters it, DeepSpeed's stated restart, and a resume that changes strategy."""

from __future__ import annotations

import copy
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

import fsdp_child
import pixiu.recipes.lora_sft as recipe
from pixiu.checkpoint import list_checkpoints
from pixiu.config import load_config
from pixiu.distributed import Ranks
from pixiu.errors import PixiuError
from pixiu.lora import adapter_state, restore_adapter_state
from pixiu.loss import labelled_loss
from pixiu.optimizer_state import by_index, by_name, parameter_names
from toy_domain import TOY, write_toy_data


def _stepped() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A small module and an AdamW with two param groups (as LoRA+ has), after two steps."""
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    optimizer = torch.optim.AdamW(
        [{"params": [module[1].weight, module[0].weight]}, {"params": [module[0].bias], "lr": 0.1}], lr=0.01
    )
    for _ in range(2):
        module(torch.randn(5, 3)).sum().backward()
        optimizer.step()
    return module, optimizer


def _max_difference(a: dict, b: dict) -> float:
    """The largest difference between two one-process optimizer states, which must hold the same entries."""
    assert a["state"].keys() == b["state"].keys()
    assert a["param_groups"] == b["param_groups"]
    return max((a["state"][i][k] - b["state"][i][k]).abs().max().item() for i in a["state"] for k in a["state"][i])


def test_the_one_process_state_converts_to_names_and_back():
    module, optimizer = _stepped()
    names = parameter_names(module, optimizer)
    assert names == ["1.weight", "0.weight", "0.bias"]  # the optimizer's order, not the module's
    state = optimizer.state_dict()
    named = by_name(state, names)
    assert named["param_groups"][0]["params"] == ["1.weight", "0.weight"]
    assert named["state"]["0.bias"]["exp_avg"] is state["state"][2]["exp_avg"]
    named["param_groups"][0]["params"].reverse()  # the indices follow `names`, not the order a group lists
    assert _max_difference(by_index(named, names), state) == 0.0


def test_a_state_for_other_parameters_is_refused():
    module, optimizer = _stepped()
    with pytest.raises(PixiuError, match="steps 3 parameters, this run's optimizer 2; resume with the lora settings"):
        by_name(optimizer.state_dict(), parameter_names(module, optimizer)[:2])


def test_fsdp_on_two_cpu_processes_keeps_adamw_whole_across_checkpoints(tiny_model_dir, tmp_path):
    # the one-process run: 2 steps (its checkpoint), then step 3
    model, optimizer = fsdp_child.fresh_adapter(str(tiny_model_dir))
    fsdp_child.train(lambda batch: labelled_loss(model, batch)[0], optimizer, range(2))
    step2 = {"adapter": adapter_state(model), "optimizer": copy.deepcopy(optimizer.state_dict())}
    torch.save(step2, tmp_path / "step2.pt")
    fsdp_child.train(lambda batch: labelled_loss(model, batch)[0], optimizer, range(2, 3))
    step3 = {"adapter": adapter_state(model), "optimizer": optimizer.state_dict()}

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = Path(fsdp_child.__file__)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(child)]
    ran = subprocess.run(
        [*command, str(tiny_model_dir), str(tmp_path / "step2.pt"), str(tmp_path / "fsdp.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr[-3000:]
    fsdp = torch.load(tmp_path / "fsdp.pt", weights_only=True)
    # Every rank computes the whole batch, so FSDP's average of two equal gradients is the one-process gradient
    # bit for bit (halving and adding two equal floats is exact): nothing but the sharding can make these differ.
    assert _max_difference(fsdp["fresh"]["optimizer"], step2["optimizer"]) == 0.0
    assert fsdp["fresh"]["optimizer"]["state"][0]["step"] == 2
    # a one-process checkpoint resumed by FSDP on 2 ranks: its step 3 is the one-process step 3
    assert _max_difference(fsdp["resumed"]["optimizer"], step3["optimizer"]) == 0.0
    assert all(torch.equal(fsdp["resumed"]["adapter"][k], step3["adapter"][k]) for k in step3["adapter"])

    # and the FSDP checkpoint resumed on one process: step 3 again, with AdamW's moments, not from zero
    model, optimizer = fsdp_child.fresh_adapter(str(tiny_model_dir))
    restore_adapter_state(model, fsdp["fresh"]["adapter"])
    optimizer.load_state_dict(fsdp["fresh"]["optimizer"])
    fsdp_child.train(lambda batch: labelled_loss(model, batch)[0], optimizer, range(2, 3))
    assert _max_difference(optimizer.state_dict(), step3["optimizer"]) == 0.0
    restarted, fresh_optimizer = fsdp_child.fresh_adapter(str(tiny_model_dir))
    restore_adapter_state(restarted, fsdp["fresh"]["adapter"])
    fsdp_child.train(lambda batch: labelled_loss(restarted, batch)[0], fresh_optimizer, range(2, 3))
    lost = max((adapter_state(restarted)[k] - step3["adapter"][k]).abs().max().item() for k in step3["adapter"])
    assert lost > 1e-3, "restarting AdamW should change step 3, or this test could not tell"


def test_deepspeed_drops_a_resumed_adamw_state_and_checkpoints_none():
    module, optimizer = _stepped()
    plugin = SimpleNamespace(deepspeed_config={})
    accelerator = SimpleNamespace(
        num_processes=2,
        is_main_process=True,
        device=torch.device("cpu"),
        state=SimpleNamespace(deepspeed_plugin=plugin),
        prepare=lambda wrapped, prepared: (wrapped, prepared),
    )
    ranks = Ranks(accelerator, "deepspeed-zero2")
    module.get_base_model = lambda: module  # what _LossModule reads off a peft model
    ranks.prepare(module, optimizer, labelled_loss)
    assert ranks.restarts_optimizer and not optimizer.state  # not left for ZeRO's partitions to ignore
    assert ranks.optimizer_state(optimizer) is None
    assert not Ranks(accelerator, "ddp").restarts_optimizer and not Ranks().restarts_optimizer


def test_a_run_resumes_exactly_under_another_strategy(tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    common = ["data.max_seq_len=64", "train.batch_tokens=256", "train.max_steps=3", "train.save_every=2"]
    settings = [*common, "data.eval_records=0", "train.lr=1e-2", "train.device=cpu"]
    run_dir = tmp_path / "run"
    fsdp = load_config(overrides=[*settings, "train.strategy=fsdp"], values={"base": str(tiny_model_dir)})
    recipe.run(TOY, fsdp, data, run_dir)  # one process: the strategy only matters under a launcher
    straight = load_file(str(run_dir / "adapter_model.safetensors"))
    shutil.rmtree(list_checkpoints(run_dir)[-1])  # as if it had died after step 2's checkpoint
    (run_dir / "adapter_model.safetensors").unlink()
    ddp = load_config(overrides=[*settings, "train.strategy=ddp"], values={"base": str(tiny_model_dir)})
    recipe.run(TOY, ddp, data, run_dir, resume=True)
    resumed = load_file(str(run_dir / "adapter_model.safetensors"))
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def _checkpoint_state(run_dir: Path, step: int) -> dict:
    """The optimizer state a run's checkpoint `step` holds."""
    return torch.load(run_dir / "checkpoints" / f"step-{step:07d}" / "state.pt", weights_only=True)["optimizer"]


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
def test_fsdp_on_two_gpus_checkpoints_adamw_whole_and_resumes_on_one(toy_plugin, tiny_model_dir, tmp_path, pixiu_home):
    from click.testing import CliRunner

    from pixiu.cli import cli
    from pixiu_process import PIXIU, TINY_TRAIN

    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    same = ["--max-steps", "3", "--set", "train.save_every=2", "--set", "train.lr=1e-2"]
    given = ["--base", str(tiny_model_dir), "--data", str(data), *TINY_TRAIN, *same]
    one, two = tmp_path / "one", tmp_path / "two"
    alone = CliRunner().invoke(cli, ["domain", "train", "toy", *given, "--output", str(one)], catch_exceptions=False)
    assert alone.exit_code == 0, alone.output
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PIXIU_LOAD_PLUGINS": "toy"}
    command = [*PIXIU, "domain", "train", "toy", *given, "--output", str(two), "--devices", "2", "--strategy", "fsdp"]
    launched = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stdout + launched.stderr[-3000:]
    # the 2 GPUs each sum half of every step's rows: float rounding apart, AdamW's moments are the one GPU's
    written, expected = _checkpoint_state(two, 2), _checkpoint_state(one, 2)
    assert written["state"].keys() == expected["state"].keys() and written["state"][0]["step"] == 2
    for index, moments in expected["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(written["state"][index][key], moments[key], rtol=1e-3, atol=1e-7), (index, key)

    shutil.rmtree(list_checkpoints(two)[-1])  # as if the run had died after step 2's checkpoint
    (two / "adapter_model.safetensors").unlink()
    resume = ["domain", "train", "toy", "--resume", "--output", str(two), "--devices", "1"]
    resumed = CliRunner().invoke(cli, resume, catch_exceptions=False)
    assert resumed.exit_code == 0 and "AdamW restarts" not in resumed.output, resumed.output
    one_adapter, two_adapter = (load_file(str(d / "adapter_model.safetensors")) for d in (one, two))
    assert max((one_adapter[k] - two_adapter[k]).abs().max().item() for k in one_adapter) < 1e-4


def test_a_deepspeed_resume_says_that_adamw_restarts(tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    overrides = ["data.max_seq_len=64", "train.batch_tokens=256", "train.max_steps=2", "train.save_every=1"]
    config = load_config(overrides=[*overrides, "data.eval_records=0"], values={"base": str(tiny_model_dir)})
    run_dir = tmp_path / "run"
    recipe.run(TOY, config, data, run_dir)
    shutil.rmtree(list_checkpoints(run_dir)[-1])
    monkeypatch.setattr(Ranks, "restarts_optimizer", property(lambda ranks: True))  # as under a DeepSpeed launch
    said = io.StringIO()
    recipe.run(TOY, config, data, run_dir, resume=True, console=Console(file=said, width=400))
    assert "DeepSpeed's ZeRO partitions keep AdamW's state" in said.getvalue()
    assert "AdamW restarts from zero" in said.getvalue()
