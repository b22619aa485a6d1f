"""Recurrent bases (RWKV) in training and evaluation: rescaling off, generation without padding, exact resume,
tuning methods that work or are refused. A tiny random RWKV proves the plumbing, not quality."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from interrupts import interrupt_after_saving
from pixiu.config import load_config
from pixiu.errors import PixiuError
from pixiu.families import lora_targets
from pixiu.generate import continuations, sample_completions
from pixiu.models import load_base
from pixiu.recipes.lora_sft import run
from pixiu.tiny import create_tiny_model
from toy_domain import TOY, write_toy_data

SMALL = [
    "data.max_seq_len=48",
    "train.batch_tokens=192",
    "data.eval_records=2",
    "eval.max_new_tokens=2",
    "eval.general=false",
    "train.lr=1e-2",
    "train.warmup_steps=0",
]


@pytest.fixture(scope="module")
def rwkv_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random RWKV folder (rescale_every=1, as real checkpoints rescale), made once per module."""
    return create_tiny_model(tmp_path_factory.mktemp("rwkv"), arch="rwkv")


def adapted(model, seed: int = 0):
    """`model` with a random non-zero LoRA adapter on every RWKV projection (dropout off)."""
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=lora_targets(model, "auto"), init_lora_weights=False)
    return get_peft_model(model, config)


def test_an_adapter_computes_the_same_in_training_and_inference(rwkv_dir):
    """transformers halves the tiny RWKV's second-block output weights in eval mode but not the LoRA delta on them;
    `load_base` turns that rescaling off, so eval computes what training does."""
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    for loader, same in ((lambda: load_base(str(rwkv_dir))[0], True), (lambda: _plain(rwkv_dir), False)):
        model = adapted(loader())
        with torch.no_grad():
            trained = model.train()(input_ids=ids).logits
            inferred = model.eval()(input_ids=ids).logits
        assert torch.allclose(trained, inferred, atol=1e-5) is same


def _plain(folder: Path):
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.rescale_every == 1  # the on-disk config keeps a real checkpoint's rescaling
    return model


def test_batched_generation_equals_each_prompt_alone(rwkv_dir):
    model = adapted(load_base(str(rwkv_dir))[0]).eval()
    reference = _plain(rwkv_dir)  # transformers' own layers, unpatched; unscaled as load_base leaves them
    reference.config.rescale_every = 0
    reference = adapted(reference).eval()  # the same seed: the same adapter
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    stops = [0]
    batched = continuations(model, prompts, pad_id=0, stops=stops, max_new_tokens=5)
    for prompt, got in zip(prompts, batched, strict=True):  # peft's generate, one unpadded prompt at a time
        with torch.inference_mode():
            alone = reference.generate(input_ids=torch.tensor([prompt]), max_new_tokens=5, do_sample=False)
        expected = alone[0, len(prompt) :].tolist()
        assert got == expected[: len(got)] and (len(got) == 5 or got[-1] in stops)
    with torch.inference_mode():  # transformers' one-token step mixes the rows of a batch; pixiu's keeps them apart
        state = model(input_ids=torch.tensor([[5, 6, 7], [8, 9, 10]]), use_cache=True).state
        assert model(input_ids=torch.tensor([[3], [4]]), state=state).logits.shape == (2, 1, model.config.vocab_size)
        state = reference(input_ids=torch.tensor([[5, 6, 7], [8, 9, 10]]), use_cache=True).state
        assert reference(input_ids=torch.tensor([[3], [4]]), state=state).logits.shape[:2] == (2, 2)


def test_sampled_completions_follow_the_seed(rwkv_dir):
    model, tokenizer = load_base(str(rwkv_dir))
    sample = lambda: sample_completions(  # noqa: E731
        model, tokenizer, [[5, 6, 7], [8, 9]], samples=2, max_new_tokens=4, temperature=1.0
    )
    torch.manual_seed(3)
    first = sample()
    torch.manual_seed(3)
    assert sample() == first and len(first) == 4 and all(0 < len(c) <= 4 for c in first)


def test_lora_trains_evaluates_and_resumes_exactly(rwkv_dir, tmp_path, monkeypatch):
    """4 steps straight (then the held-out evaluation) equal 2 steps, a stop, and a resume."""
    data = write_toy_data(tmp_path / "toy.jsonl", 20)
    config = load_config(overrides=[*SMALL, "train.max_steps=4", "train.save_every=2"], values={"base": str(rwkv_dir)})
    summary = run(TOY, config, data, tmp_path / "straight")
    assert "exact_match" in summary.metrics["adapter"]
    with monkeypatch.context() as patch:
        interrupt_after_saving(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run(TOY, config, data, tmp_path / "resumed")
    run(TOY, config, data, tmp_path / "resumed", resume=True)
    straight = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "adapter_model.safetensors"))
    assert straight.keys() == resumed.keys() and any(".attention.output." in key for key in straight)
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_gradient_checkpointing_gives_the_same_gradients(rwkv_dir):
    from pixiu.lora import enable_gradient_checkpointing

    ids = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 14, 0, 0]])
    grads = []
    for checkpointing in (False, True):
        base = load_base(str(rwkv_dir))[0]
        if checkpointing:
            enable_gradient_checkpointing(base)
            assert all(block.gradient_checkpointing for block in base.rwkv.blocks)
        model = adapted(base).train()
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
    assert grads[0].keys() == grads[1].keys() and all(g is not None for g in grads[1].values())
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad)


@pytest.mark.parametrize(
    "method", ["ia3", pytest.param("dora", marks=pytest.mark.slow), pytest.param("adalora", marks=pytest.mark.slow)]
)
def test_other_methods_train(method, rwkv_dir, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 12)
    overrides = [*SMALL, "train.max_steps=3", f"lora.method={method}"]
    summary = run(TOY, load_config(overrides=overrides, values={"base": str(rwkv_dir)}), data, tmp_path / "run")
    assert summary.metrics["train"]["steps"] == 3 and "adapter" in summary.metrics


@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_prompt_learning_is_refused_before_the_weights_load(method, rwkv_dir, tmp_path, monkeypatch):
    import pixiu.training

    def never(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(pixiu.training, "load_base", never)
    data = write_toy_data(tmp_path / "toy.jsonl", 8)
    config = load_config(overrides=[*SMALL, f"lora.method={method}"], values={"base": str(rwkv_dir)})
    with pytest.raises(PixiuError, match=rf"lora.method={method} cannot train a recurrent rwkv base.*lora.method lora"):
        run(TOY, config, data, tmp_path / "run")


def test_a_merged_ia3_adapter_computes_what_the_adapter_does(rwkv_dir, tmp_path):
    """IA3 (served merged) on pixiu's RWKV modules; the merged folder runs unscaled in plain transformers too."""
    from peft import PeftModel

    from pixiu.merge import merge_adapter
    from pixiu.methods import peft_config

    torch.manual_seed(0)
    lora = load_config(overrides=["lora.method=ia3"]).lora
    base = load_base(str(rwkv_dir))[0]
    model = get_peft_model(base, peft_config(lora, 10, [], "rwkv"))
    with torch.no_grad():  # move the scales off their identity start
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "adapter")
    merged = merge_adapter(tmp_path / "adapter", tmp_path / "merged", base=str(rwkv_dir))
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        adapter = PeftModel.from_pretrained(load_base(str(rwkv_dir))[0], tmp_path / "adapter").eval()
        expected = adapter(input_ids=ids).logits
        plain = load_base(str(rwkv_dir))[0](input_ids=ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged).eval()(input_ids=ids).logits
    assert not torch.allclose(expected, plain, atol=1e-4)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
