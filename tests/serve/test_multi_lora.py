"""Per-row adapter routing against peft itself: every row of a mixed batch equals its adapter run alone."""

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM

from pixiu.errors import PixiuError
from pixiu.serve.multi_lora import MultiLora, read_adapter


def peft_logits(tiny_model_dir, adapter_dirs, input_ids):
    """Each model's logits for the whole batch, computed by peft with one adapter active at a time."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dirs["law"]), adapter_name="law"
    )
    for name in ("medical", "zhihu"):
        model.load_adapter(str(adapter_dirs[name]), adapter_name=name)
    logits = {}
    with torch.inference_mode():
        for name in adapter_dirs:
            model.set_adapter(name)
            logits[name] = model(input_ids=input_ids).logits
        with model.disable_adapter():
            logits[None] = model(input_ids=input_ids).logits
    return logits


@pytest.mark.parametrize(
    ("capacity", "rows"),
    [
        (1, ["law", "medical", None, "zhihu", "law"]),  # the stacks grow while adapters are added; all slots used
        (16, ["law", "medical", None, "zhihu", "law"]),  # few of many slots used: they are gathered
        (4, [None, "zhihu", None, "zhihu", "zhihu"]),  # one adapter and the base
        (4, [None, None, "law", "medical", "zhihu"]),  # sorted by slot: a run of base rows alone adds nothing
    ],
)
def test_mixed_batch_rows_match_peft(tiny_model_dir, adapter_dirs, capacity, rows):
    input_ids = torch.randint(3, 1000, (5, 9), generator=torch.Generator().manual_seed(0))
    expected = peft_logits(tiny_model_dir, adapter_dirs, input_ids)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loras = MultiLora(model, capacity=capacity)
    slots = {name: loras.add(read_adapter(folder)) for name, folder in adapter_dirs.items()}
    with torch.inference_mode(), loras.route([slots.get(name) for name in rows]):
        logits = model(input_ids=input_ids).logits
    for i, name in enumerate(rows):
        assert torch.allclose(logits[i], expected[name][i], atol=1e-5), name
    assert not torch.allclose(expected["law"], expected["medical"], atol=1e-2)  # the adapters really differ
    with torch.inference_mode():
        assert torch.equal(model(input_ids=input_ids).logits, expected[None])  # outside `route`: the plain base


def test_rows_sorted_by_slot_run_through_only_their_own_slots(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loras = MultiLora(model, capacity=8)
    loras.rank = 8
    rows = [slot for slot in range(8) for _ in range(6)]  # 48 rows, 8 adapters, as the engine sorts them
    segments = loras._segments(rows)
    assert segments is not None and len(segments) == 3  # about sqrt(8) runs
    for segment in segments:
        own = sorted(set(rows[segment.rows]))
        assert segment.slots == slice(own[0], own[-1] + 1) and len(own) <= 4  # views of a few slots, not all 8
        assert segment.mask is not None and segment.mask.shape == (16, 1, 8 * len(own))
    assert [segment.rows for segment in segments] == [slice(0, 16), slice(16, 32), slice(32, 48)]
    assert loras._segments([None, None]) is None  # base rows only: the hooks add nothing


def test_freed_slot_is_reused_without_old_weights(tiny_model_dir, adapter_dirs):
    input_ids = torch.randint(3, 1000, (2, 6), generator=torch.Generator().manual_seed(1))
    expected = peft_logits(tiny_model_dir, adapter_dirs, input_ids)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    loras = MultiLora(model, capacity=1)
    law = loras.add(read_adapter(adapter_dirs["law"]))
    loras.remove(law)
    medical = loras.add(read_adapter(adapter_dirs["medical"]))  # adapts fewer modules than law, at a lower rank
    assert medical == law and loras.capacity == 1
    with torch.inference_mode(), loras.route([medical, medical]):
        assert torch.allclose(model(input_ids=input_ids).logits, expected["medical"], atol=1e-5)


def test_an_adapter_that_does_not_fit_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "wrong"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file(
        {f"{prefix}.lora_A.weight": torch.ones(4, 32), f"{prefix}.lora_B.weight": torch.ones(64, 4)},
        str(folder / "adapter_model.safetensors"),
    )
    loras = MultiLora(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    with pytest.raises(PixiuError, match=r"does not fit this base model.*64->64"):
        loras.add(read_adapter(folder))


def test_dora_is_refused(adapter_dirs, tmp_path):
    folder = tmp_path / "dora"
    folder.mkdir()
    config = json.loads((adapter_dirs["law"] / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "use_dora": True}))
    (folder / "adapter_model.safetensors").write_bytes((adapter_dirs["law"] / "adapter_model.safetensors").read_bytes())
    with pytest.raises(PixiuError, match="DoRA"):
        read_adapter(folder)
    with pytest.raises(PixiuError, match="not a LoRA adapter folder"):
        read_adapter(tmp_path)


def test_bf16_mixed_batch_is_as_close_to_fp32_as_peft_in_bf16(tiny_model_dir, adapter_dirs):
    """A bf16 base: every row's logits are as close to the fp32 peft truth as peft's own bf16 run is.

    bf16 keeps 8 significant bits, so no fixed tolerance on logits is meaningful for a random model; the honest
    yardstick is peft computing the same thing in bf16 (its adapters are upcast to fp32 inside; ours are bf16).
    """
    from peft import PeftModel

    input_ids = torch.randint(3, 1000, (4, 9), generator=torch.Generator().manual_seed(2))
    rows = ["law", "medical", None, "zhihu"]
    truth = peft_logits(tiny_model_dir, adapter_dirs, input_ids)
    peft_bf16 = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16), str(adapter_dirs["law"])
    )
    with torch.inference_mode():
        peft_error = (peft_bf16(input_ids=input_ids).logits.float() - truth["law"]).abs().max()
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    loras = MultiLora(model, capacity=4)
    slots = {name: loras.add(read_adapter(folder, dtype=torch.bfloat16)) for name, folder in adapter_dirs.items()}
    assert all(a.dtype == torch.bfloat16 for stacks in loras._stacks.values() for a in stacks)
    with torch.inference_mode(), loras.route([slots.get(name) for name in rows]):
        logits = model(input_ids=input_ids).logits
    assert logits.dtype == torch.bfloat16
    for i, name in enumerate(rows):
        error = (logits[i].float() - truth[name][i]).abs().max()
        assert error <= 2 * peft_error, (name, float(error), float(peft_error))
        assert logits[i].float().argmax(-1).eq(truth[name][i].argmax(-1)).float().mean() >= 0.9, name
    spread = (truth["law"] - truth["medical"]).abs().max()
    assert spread > 10 * peft_error  # the adapters differ far more than bf16 rounding: a crossed row would fail
