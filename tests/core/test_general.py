"""The forgetting probe: its question file, its scoring, and its per-token NLL against a plain forward pass."""

import json
import math

import pytest
import torch

import pixiu.general
from pixiu.config import EvalArgs
from pixiu.data import tokenize_example
from pixiu.errors import DataError
from pixiu.general import GENERAL_DATA, contains_answer, load_general, probe_general, reference_nll, run_probe
from pixiu.models import load_base


def test_bundled_set_has_both_languages_and_short_answers():
    examples, source = load_general(None)
    assert source == "bundled" and len(examples) == 40
    questions = [e.messages[0]["content"] for e in examples]
    assert sum(any("\u4e00" <= ch <= "\u9fff" for ch in q) for q in questions) == 20
    assert all(0 < len(e.reference) <= 20 for e in examples)
    assert GENERAL_DATA.is_file()


def test_user_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "general.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "no answer"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=f'{path}:2: .*"question" and "answer"'):
        load_general(path)
    path.write_text('{"question": "1+1?", "answer": "2"}\n', encoding="utf-8")
    examples, source = load_general(path)
    assert source == str(path) and examples[0].reference == "2" and examples[0].where == f"{path}:1"


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("The capital is Paris.", "paris", True),
        ("It's the Pacific   Ocean!", "the Pacific Ocean", True),
        ("Pacific", "the Pacific Ocean", False),
        ("答案是北京。", "北京", True),
        ("北方的京城", "北京", False),
        ("154", "15", False),
        ("", "15", False),
    ],
)
def test_contains_answer(answer, reference, expected):
    assert contains_answer(answer, reference) is expected


def test_reference_nll_is_the_answer_tokens_mean_cross_entropy(tiny_model_dir):
    model, tokenizer = load_base(str(tiny_model_dir))
    examples, _ = load_general(None)
    examples = examples[:3]
    total, count = 0.0, 0
    for example in examples:  # one at a time, full logits: no batching, no padding, no selective head
        tokens = tokenize_example(tokenizer, example.messages, 256)
        ids = torch.tensor([tokens.input_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        labels = torch.tensor(tokens.labels[1:])
        keep = labels >= 0
        total += float(torch.nn.functional.cross_entropy(logits[keep], labels[keep], reduction="sum"))
        count += int(keep.sum())
    nll = reference_nll(model, tokenizer, examples, max_len=256, batch_size=2)
    assert math.isclose(nll, total / count, rel_tol=1e-4)


def test_probe_scores_each_variant_and_writes_predictions(tiny_model_dir, tmp_path, monkeypatch):
    model, tokenizer = load_base(str(tiny_model_dir))
    examples, _ = load_general(None)
    perfect = [e.reference for e in examples]
    monkeypatch.setattr(pixiu.general, "generate_answers", lambda *args, **kwargs: list(perfect))
    probe = probe_general(
        model, tokenizer, examples, source="bundled", max_len=128, max_new_tokens=4, batch_size=16, variants=("base",)
    )
    assert probe.section["base"]["rouge_l"] == 100.0 and probe.section["base"]["contains_answer"] == 100.0
    assert probe.section["base"]["nll_per_token"] > 1.0  # a random model is far from the references
    monkeypatch.setattr(pixiu.general, "generate_answers", lambda *args, **kwargs: ["?"] * len(examples))
    path = tmp_path / "general.jsonl"
    section = run_probe(model, tokenizer, EvalArgs(), max_len=128, variants=("base",), predictions_path=path)
    assert section["base"]["rouge_l"] == 0.0 and section["base"]["contains_answer"] == 0.0
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 40 and rows[0]["base"] == "?" and rows[0]["gold"] == perfect[0]
