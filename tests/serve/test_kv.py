"""The KV cache and the batch over it: rows that join and leave a shared cache compute what peft computes alone."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from pixiu.errors import PixiuError
from pixiu.serve import kv
from pixiu.serve.batch import Batch, Row
from pixiu.serve.multi_lora import MultiLora, read_adapter
from pixiu.serve.request import EngineRequest, SamplingParams

from .helpers import PROMPTS, chat_ids


@torch.inference_mode()
def test_batched_decoding_matches_peft_step_by_step(tiny_model_dir, adapter_dirs, tokenizer, reference):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    loras = MultiLora(model)
    slots = {name: loras.add(read_adapter(folder)) for name, folder in adapter_dirs.items()}
    cache_argument = kv.cache_argument(model)
    # the batch keeps its rows sorted by slot (law 0, medical 1, zhihu 2; base first): joining rows are inserted
    jobs = [("zhihu", PROMPTS[5]), ("base", PROMPTS[3]), ("medical", PROMPTS[1]), ("law", PROMPTS[0])]
    steps = 6
    expected = {
        model_name: reference(model_name, chat_ids(tokenizer, prompt), steps + 1) for model_name, prompt in jobs
    }
    batch, rows, caches = Batch(), [], []
    for model_name, prompt in jobs:  # each prompt prefilled alone, as the engine does
        ids = chat_ids(tokenizer, prompt)
        request = EngineRequest(
            model_name, ids, SamplingParams(max_tokens=steps + 1), lambda *event: None, slot=slots.get(model_name)
        )
        cache = kv.new_cache(model.config)
        with loras.route([request.slot]):
            logits = model(input_ids=torch.tensor([ids]), use_cache=True, **{cache_argument: cache}).logits[0, -1]
        assert torch.allclose(logits, expected[model_name][1][0], atol=1e-5), model_name
        rows.append(Row(request, len(ids), int(logits.argmax())))
        caches.append(cache)
    batch.add(rows[:2], caches[:2])
    joined = False
    for step in range(1, steps + 1):
        if step == 2:  # two more rows join a batch that is already decoding
            batch.add(rows[2:], caches[2:])
            joined = True
            assert [row.request.model for row in batch.rows] == ["base", "law", "medical", "zhihu"]
        inputs = batch.step_inputs()
        with loras.route([row.request.slot for row in batch.rows]):
            logits = model(**inputs, use_cache=True, **{cache_argument: batch.cache}).logits[:, -1]
        keep = []
        for i, row in enumerate(batch.rows):
            row.length += 1
            tokens, reference_logits = expected[row.request.model]
            position = row.length - len(row.request.prompt_ids)  # tokens this row has been fed so far
            if position < len(reference_logits):
                assert torch.allclose(logits[i], reference_logits[position], atol=1e-5), (row.request.model, step)
                assert row.token == tokens[position - 1]
            row.token = int(logits[i].argmax())
            if not (step == 3 and row.request.model == "base"):  # one row leaves mid-way
                keep.append(i)
        batch.keep(keep)
    assert joined and [row.request.model for row in batch.rows] == ["law", "medical", "zhihu"]
    assert batch.width == max(row.length for row in batch.rows)  # columns of padding in every row were dropped


def test_unsupported_cache_layers_are_refused(tiny_model_dir, monkeypatch):
    config = AutoModelForCausalLM.from_pretrained(tiny_model_dir).config
    assert kv.new_cache(config).get_seq_length() == 0  # empty: its full-attention layers come as the model fills it
    monkeypatch.setattr(kv, "DynamicLayer", type("SomeOtherLayer", (), {}))
    with pytest.raises(PixiuError, match="sliding-window-attention models only; this model's cache uses DynamicLayer"):
        kv.new_cache(config)


def test_an_unknown_cache_layout_names_the_supported_versions(tiny_model_dir, monkeypatch):
    config = AutoModelForCausalLM.from_pretrained(tiny_model_dir).config
    monkeypatch.setattr(kv, "DynamicCache", lambda config: object())  # a cache without `layers`
    with pytest.raises(PixiuError, match=r"pip install 'transformers>=5.0,<6'"):
        kv.new_cache(config)


def test_the_cache_argument_follows_the_models_signature(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert kv.cache_argument(model) in {"cache", "past_key_values"}
    with pytest.raises(PixiuError, match="neither `cache` nor `past_key_values`"):
        kv.cache_argument(torch.nn.Linear(2, 2))
