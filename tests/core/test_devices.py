"""Device and precision choices in training and eval: each wrong one fails before any weights load."""

import json

import pytest
import torch

import pixiu.models
import pixiu.recipes.lora_sft as recipe
import pixiu.training as training
from pixiu.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from pixiu.cli import cli
from pixiu.config import load_config
from pixiu.distributed import Ranks
from pixiu.errors import PixiuError
from pixiu.evaluation import evaluate_domain
from pixiu.training import training_setup
from toy_domain import TOY, write_toy_data


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a base model is loaded."""

    def refuse(*args, **kwargs):
        pytest.fail("load_base was called although the device/precision check should have failed first")

    monkeypatch.setattr(training, "load_base", refuse)
    monkeypatch.setattr(pixiu.models, "load_base", refuse)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def old_gpu(monkeypatch):
    """A CUDA machine whose only GPU (a T4) has no bfloat16."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.device=cpu", "train.precision=fp16"], "fp16 on the CPU"),
        (["train.device=cuda"], "--device cuda: .*--device cpu"),
        (["train.device=cuda:1"], "--device cuda:1"),
        (["lora.quantize=4bit"], "lora.quantize=4bit needs a CUDA GPU"),
        (["train.device=cpu", "lora.quantize=8bit"], "lora.quantize=8bit needs a CUDA GPU"),
    ],
)
def test_training_refuses_before_loading(overrides, message, no_cuda, no_loading, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 10)
    with pytest.raises(PixiuError, match=message):
        recipe.run(TOY, load_config(overrides=overrides, values={"base": "unused"}), data, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_bf16_on_a_gpu_without_it_is_refused_before_loading(old_gpu, no_loading, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 10)
    config = load_config(overrides=["train.device=cuda", "train.precision=bf16"], values={"base": "unused"})
    with pytest.raises(PixiuError, match=r"Tesla T4 has no bfloat16 support.*--precision fp16"):
        recipe.run(TOY, config, data, tmp_path / "run")


def test_auto_on_a_gpu_without_bf16_is_fp32_and_fp16_gets_a_scaler(old_gpu):
    assert training_setup(load_config(overrides=["train.device=cuda"]), Ranks()).dtype == torch.float32
    setup = training_setup(load_config(overrides=["train.device=cuda", "train.precision=fp16"]), Ranks())
    assert setup.dtype == torch.float16 and setup.scaler.is_enabled()


def test_cpu_training_needs_no_scaler():
    setup = training_setup(load_config(overrides=["train.device=cpu", "train.precision=bf16"]), Ranks())
    assert setup.device == torch.device("cpu") and setup.dtype == torch.bfloat16 and not setup.scaler.is_enabled()


@pytest.mark.parametrize(
    ("device", "precision", "message"),
    [("cuda", "auto", "--device cuda"), ("cpu", "fp16", "fp16 on the CPU")],
)
def test_eval_refuses_before_loading(device, precision, message, toy_plugin, no_cuda, no_loading):
    with pytest.raises(PixiuError, match=message):
        evaluate_domain("toy", device=device, precision=precision)


def test_eval_loads_the_base_on_the_device_in_the_precision(toy_plugin, tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 4)
    seen = {}
    load = pixiu.models.load_base

    def spy(spec, **kwargs):
        seen.update(kwargs)
        return load(spec, **kwargs)

    monkeypatch.setattr(pixiu.models, "load_base", spy)
    report = evaluate_domain("toy", base=str(tiny_model_dir), data_path=data, limit=2, device="cpu", precision="bf16")
    assert seen == {"dtype": torch.bfloat16, "device": torch.device("cpu")}
    assert report["device"] == "cpu" and report["precision"] == "bf16" and report["records"] == 2


def test_a_checkpoint_loads_onto_the_cpu_and_ignores_cuda_generators_without_cuda(tmp_path, no_cuda):
    adapter = {"lora_A": torch.ones(2, 2), "lora_B": torch.zeros(2, 2)}
    state = {"optimizer": {"state": {0: {"exp_avg": torch.full((2, 2), 0.5)}}}}
    save_checkpoint(tmp_path, 1, adapter, state, keep=1)
    (path,) = list_checkpoints(tmp_path)
    # what a GPU run adds to the saved generators; a CPU-only resume must load past it
    saved = torch.load(path / "state.pt", weights_only=True)
    saved["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    torch.save(saved, path / "state.pt")
    loaded_adapter, loaded_state = load_checkpoint(path)
    assert all(t.device.type == "cpu" for t in loaded_adapter.values())
    assert loaded_state["optimizer"]["state"][0]["exp_avg"].device.type == "cpu"
    assert torch.equal(loaded_adapter["lora_A"], adapter["lora_A"])


def test_cuda_generators_are_saved_only_when_cuda_is_there(tmp_path, no_cuda):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(1)}, {}, keep=1)
    (path,) = list_checkpoints(tmp_path)
    assert "cuda" not in torch.load(path / "state.pt", weights_only=True)["rng"]


def invoke(*args):
    from click.testing import CliRunner

    return CliRunner().invoke(cli, list(args))


def test_train_hardware_flags_reach_the_config(toy_plugin, captured_run, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 10)
    common = ["domain", "train", "toy", "--data", str(data), "--output", str(tmp_path / "run")]
    invoke(*common, "--device", "cuda:1", "--precision", "bf16", "--gradient-checkpointing")
    invoke(*common, "--no-gradient-checkpointing")
    (_, flagged), (_, default) = captured_run
    assert (flagged.train.device, flagged.train.precision, flagged.train.gradient_checkpointing) == (
        "cuda:1",
        "bf16",
        True,
    )
    assert (default.train.device, default.train.precision, default.train.gradient_checkpointing) == (
        "auto",
        "auto",
        False,
    )


def test_an_unknown_device_flag_is_a_usage_error(toy_plugin, captured_run):
    for command in ("train", "eval"):
        result = invoke("domain", command, "toy", "--device", "gpu")
        assert result.exit_code == 2 and "unknown device 'gpu'" in result.output
    assert not captured_run


def test_eval_hardware_flags_reach_evaluate_domain(toy_plugin, monkeypatch):
    import pixiu.evaluation

    seen = {}

    def fake(domain_name, **kwargs):
        seen.update(kwargs)
        return {"scores": {"base": {}}, "records": 0, "data": "x"}

    monkeypatch.setattr(pixiu.evaluation, "evaluate_domain", fake)
    result = invoke("domain", "eval", "toy", "--device", "cpu", "--precision", "bf16", "--json")
    assert result.exit_code == 0, result.output
    assert seen["device"] == "cpu" and seen["precision"] == "bf16"
    assert json.loads(result.output)["records"] == 0
