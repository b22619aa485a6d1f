"""The recipe on a real CUDA GPU: bf16, fp16 with its gradient scaler, and 4-bit QLoRA. Skipped without CUDA."""

import importlib.util
import json

import pytest
import torch

import pixiu.recipes.lora_sft as recipe
from interrupts import interrupt_after_saving
from pixiu.config import load_config
from toy_domain import TOY, write_toy_data

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
SMALL = ["data.max_seq_len=64", "train.batch_tokens=256", "eval.max_new_tokens=2", "train.lr=1e-3", "train.max_steps=4"]


@pytest.mark.parametrize("extra", [["train.precision=bf16"], ["train.precision=fp16"], ["train.precision=fp32"]])
def test_training_on_the_gpu_records_cuda_memory(extra, tiny_model_dir, tmp_path):
    if extra == ["train.precision=bf16"] and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no bfloat16")
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    overrides = [*SMALL, "train.device=cuda", "data.eval_records=2", *extra]
    config = load_config(overrides=overrides, values={"base": str(tiny_model_dir)})
    recipe.run(TOY, config, data, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]
    assert metrics["device"] == "cuda:0" and metrics["precision"] == extra[0].split("=")[1]
    assert metrics["peak_memory"]["kind"] == "cuda_max_memory_allocated" and metrics["peak_memory"]["gib"] > 0


def test_a_gpu_checkpoint_resumes_on_the_cpu(tiny_model_dir, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    common = [*SMALL, "train.save_every=2", "data.eval_records=0"]
    gpu = load_config(overrides=[*common, "train.device=cuda"], values={"base": str(tiny_model_dir)})
    with monkeypatch.context() as patch:
        interrupt_after_saving(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            recipe.run(TOY, gpu, data, tmp_path / "run")
    cpu = load_config(overrides=[*common, "train.device=cpu"], values={"base": str(tiny_model_dir)})
    recipe.run(TOY, cpu, data, tmp_path / "run", resume=True)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]["device"] == "cpu"


@pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="needs pip install 'pixiu[qlora]'")
@pytest.mark.parametrize("kind", ["4bit", "8bit"])
def test_qlora_trains_on_the_gpu(kind, tiny_model_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 30)
    overrides = [*SMALL, "train.device=cuda", "data.eval_records=0", f"lora.quantize={kind}"]
    recipe.run(TOY, load_config(overrides=overrides, values={"base": str(tiny_model_dir)}), data, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["train"]
    assert metrics["quantize"] == kind and metrics["final_loss"] is not None
