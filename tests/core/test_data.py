"""Tokenising, prompt masking, truncation and length-grouped batches."""

import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from pixiu.data import IGNORE_INDEX, StepBatches, TokenizedExample, collate, group_by_length, render, tokenize_example
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
    return tokenizer.decode(
        [t for t, label in zip(example.input_ids, example.labels, strict=False) if label != IGNORE_INDEX]
    )


def test_only_the_answer_is_learned(tokenizer):
    example = tokenize_example(tokenizer, conversation(1), max_len=512)
    assert tokenizer.decode(example.input_ids) == render(tokenizer, conversation(1))
    assert learned_text(tokenizer, example).startswith("罪名：盗窃1")
    assert "事实" not in learned_text(tokenizer, example)


def test_every_assistant_turn_is_learned_in_a_dialogue(tokenizer):
    dialogue = [
        *conversation(1),
        {"role": "user", "content": "为什么？"},
        {"role": "assistant", "content": "因为秘密窃取。"},
    ]
    text = learned_text(tokenizer, tokenize_example(tokenizer, dialogue, max_len=512))
    assert "罪名：盗窃1" in text and "因为秘密窃取。" in text and "为什么" not in text


def test_long_prompt_is_cut_but_the_answer_survives(tokenizer):
    example = tokenize_example(tokenizer, conversation(7, fact_repeats=200), max_len=96)
    assert len(example) <= 96
    assert learned_text(tokenizer, example).startswith("罪名：盗窃7")


def test_groups_cover_every_example_within_budget_with_little_padding():
    lengths = [random.Random(i).randint(20, 300) for i in range(200)]
    examples = [TokenizedExample([1] * n, [IGNORE_INDEX] * n) for n in lengths]
    batches = group_by_length(examples, batch_tokens=1024, seed=0)
    assert sorted(i for batch in batches for i in batch) == list(range(200))
    padded = [len(batch) * max(lengths[i] for i in batch) for batch in batches]
    assert max(padded) <= 1024
    assert 1 - sum(lengths) / sum(padded) < 0.03
    assert group_by_length(examples, 1024, seed=1) != batches


def test_padded_batch_loss_equals_separate_losses(tokenizer, model):
    examples = [tokenize_example(tokenizer, conversation(i, fact_repeats=1 + 3 * i), 256) for i in range(3)]
    with torch.no_grad():
        separate_sum, separate_count = 0.0, 0
        for i in range(3):
            loss, count = labelled_loss(model, collate(examples, [i], pad_id=0))
            separate_sum += loss.item()
            separate_count += count
        batch = collate(examples, [0, 1, 2], pad_id=0)
        padded, padded_count = labelled_loss(model, batch)
    assert batch["input_ids"].shape == (3, max(len(e) for e in examples))
    assert padded_count == separate_count
    assert padded.item() == pytest.approx(separate_sum, rel=1e-5)


def test_selective_head_matches_the_models_own_loss(tokenizer, model):
    example = tokenize_example(tokenizer, conversation(3), 256)
    batch = collate([example], [0], pad_id=0)
    with torch.no_grad():
        reference = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss.item()
        total, count = labelled_loss(model, batch)
    assert total.item() / count == pytest.approx(reference, rel=1e-5)


def test_step_batches_are_deterministic_and_cover_each_epoch(tokenizer):
    examples = [tokenize_example(tokenizer, conversation(i, fact_repeats=1 + i % 5), 128) for i in range(30)]
    stream = StepBatches(examples, batch_tokens=256, seed=5)
    again = StepBatches(examples, batch_tokens=256, seed=5)
    per_epoch = len(stream.batches_in_epoch(0))
    steps = (per_epoch + 2, 7, 2, 0)
    assert [again.for_step(s) for s in steps] == [stream.for_step(s) for s in steps]
    assert stream.position(per_epoch + 2) == (1, 2)
    seen = [i for s in range(per_epoch) for i in stream.for_step(s)]
    assert sorted(seen) == list(range(30))
    assert stream.batches_in_epoch(1) != stream.batches_in_epoch(0)


def test_an_answer_too_long_to_fit_is_flagged_cut_and_counted(tokenizer):
    from pixiu.data import cut_answers_note
    from pixiu.domain import Example

    long_answer = [{"role": "user", "content": "问"}, {"role": "assistant", "content": "罪名：盗窃。" * 100}]
    fitting = tokenize_example(tokenizer, conversation(1), max_len=96)
    cut = tokenize_example(tokenizer, long_answer, max_len=96)
    assert not fitting.answer_cut
    assert cut.answer_cut
    assert len(cut) == 96
    examples = [Example(conversation(1), where="d.jsonl:1"), Example(long_answer, where="d.jsonl:2")]
    note = cut_answers_note(examples, [fitting, cut], 96)
    assert "1 of 2 training examples (the first at d.jsonl:2)" in note
    assert "data.max_seq_len=96" in note
    assert cut_answers_note(examples[:1], [fitting], 96) is None
