"""Tokenising, prompt masking, truncation and packing."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pixiu.data import IGNORE_INDEX, StepBatches, collate, pack, render, tokenize_example
from pixiu.loss import labelled_loss


def conversation(i: int, fact_repeats: int = 1) -> list[dict]:
    return [
        {"role": "system", "content": "你是法律助手。"},
        {"role": "user", "content": f"事实：张某{i}盗窃财物。" * fact_repeats},
        {"role": "assistant", "content": f"罪名：盗窃{i}"},
    ]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()


def learned_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX])


def test_only_the_answer_is_learned(tokenizer):
    example = tokenize_example(tokenizer, conversation(1), max_len=512)
    assert tokenizer.decode(example.input_ids) == render(tokenizer, conversation(1))
    assert learned_text(tokenizer, example).startswith("罪名：盗窃1")
    assert "事实" not in learned_text(tokenizer, example)


def test_every_assistant_turn_is_learned_in_a_dialogue(tokenizer):
    dialogue = conversation(1) + [{"role": "user", "content": "为什么？"}, {"role": "assistant", "content": "因为秘密窃取。"}]
    text = learned_text(tokenizer, tokenize_example(tokenizer, dialogue, max_len=512))
    assert "罪名：盗窃1" in text and "因为秘密窃取。" in text and "为什么" not in text


def test_long_prompt_is_cut_but_the_answer_survives(tokenizer):
    example = tokenize_example(tokenizer, conversation(7, fact_repeats=200), max_len=96)
    assert len(example) <= 96
    assert learned_text(tokenizer, example).startswith("罪名：盗窃7")


def test_pack_fills_rows_without_overflow(tokenizer):
    examples = [tokenize_example(tokenizer, conversation(i, fact_repeats=1 + i % 4), 256) for i in range(40)]
    rows = pack(examples, row_tokens=256, seed=0)
    assert sorted(i for row in rows for i in row) == list(range(40))
    assert all(sum(len(examples[i]) for i in row) <= 256 for row in rows)
    lower_bound = -(-sum(len(e) for e in examples) // 256)
    assert len(rows) <= lower_bound + 1


def test_packed_loss_equals_separate_losses(tokenizer, model):
    examples = [tokenize_example(tokenizer, conversation(i, fact_repeats=1 + i), 256) for i in range(3)]
    with torch.no_grad():
        separate_sum, separate_count = 0.0, 0
        for i in range(3):
            loss, count = labelled_loss(model, collate(examples, [[i]], pad_id=0))
            separate_sum += loss.item()
            separate_count += count
        packed, packed_count = labelled_loss(model, collate(examples, [[0, 1], [2]], pad_id=0))
    assert packed_count == separate_count
    assert packed.item() == pytest.approx(separate_sum, rel=1e-5)


def test_selective_head_matches_the_models_own_loss(tokenizer, model):
    example = tokenize_example(tokenizer, conversation(3), 256)
    batch = collate([example], [[0]], pad_id=0)
    with torch.no_grad():
        reference = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss.item()
        total, count = labelled_loss(model, batch)
    assert total.item() / count == pytest.approx(reference, rel=1e-5)


def test_step_batches_are_deterministic_and_cover_each_epoch(tokenizer):
    examples = [tokenize_example(tokenizer, conversation(i), 128) for i in range(30)]
    stream = StepBatches(examples, row_tokens=128, rows_per_step=3, seed=5)
    again = StepBatches(examples, row_tokens=128, rows_per_step=3, seed=5)
    assert [again.rows_for_step(s) for s in (7, 2, 0)] == [stream.rows_for_step(s) for s in (7, 2, 0)]
    per_epoch = len(stream.rows_in_epoch(0))
    steps_in_epoch = per_epoch // 3
    seen = [i for s in range(steps_in_epoch) for row in stream.rows_for_step(s) for i in row]
    assert len(seen) == len(set(seen))
    assert stream.rows_in_epoch(1) != stream.rows_in_epoch(0)
