"""`pixiu models extend-vocab` on a tiny model: the tokens it adds, their first rows, training them with the adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from pixiu.cli import cli
from pixiu.cli.models import group as models_cli
from pixiu.config import load_config
from pixiu.errors import DataError, PixiuError
from pixiu.lora import load_adapter
from pixiu.recipes import lora_sft
from pixiu.serve.multi_lora import read_adapter
from pixiu.vocab import VOCAB_FILE, extend_base, mean_initialise, new_token_ids
from toy_domain import TOY, write_toy_data

UNSEEN = "第99个盒子是什么颜色？The box 🙂 is  blue.\n被告人张某犯盗窃罪。"
SMALL = ["data.max_seq_len=64", "train.batch_tokens=256", "eval.max_new_tokens=4", "train.lr=1e-2", "train.seed=1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 toy records (Chinese colour questions) as the domain corpus."""
    return write_toy_data(tmp_path_factory.mktemp("corpus") / "toy.jsonl", 60)


@pytest.fixture(scope="module")
def extended(tiny_model_dir: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model extended with tokens learned from the toy corpus, through the CLI."""
    output = tmp_path_factory.mktemp("extended") / "tiny-zh"
    args = [str(tiny_model_dir), "--corpus", str(corpus), "--field", "q", "--output", str(output), "--min-count", "3"]
    result = CliRunner().invoke(models_cli, ["extend-vocab", *args])
    assert result.exit_code == 0, result.output
    assert "tokens per character on the corpus" in result.output
    return output


def test_extend_vocab_adds_chinese_tokens_that_cut_tokens_per_character(tiny_model_dir, extended):
    record = json.loads((extended / VOCAB_FILE).read_text(encoding="utf-8"))
    old, new = AutoTokenizer.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(extended)
    added = record["added_characters"] + record["added_pieces"]
    assert added > 0 and record["added_pieces"] > 0 and len(new) == len(old) + added
    assert record["tokens_per_char_after"] < record["tokens_per_char_before"]
    assert new_token_ids(extended) == list(range(len(old), len(old) + added))
    assert "盒子" in new.get_vocab() or any(len(t) > 1 for t in record["tokens"])
    assert len(new(UNSEEN)["input_ids"]) < len(old(UNSEEN)["input_ids"])
    # every text decodes back unchanged, and text without the new tokens tokenizes exactly as before
    for text in [UNSEEN, "  leading spaces\tand tabs", "<|im_start|>user\n盒子<|im_end|>\n"]:
        assert new.decode(new(text, add_special_tokens=False)["input_ids"]) == text
    english = "The quick brown fox jumps over the lazy dog."
    assert new(english)["input_ids"] == old(english)["input_ids"]
    assert new.chat_template == old.chat_template
    assert new_token_ids(tiny_model_dir) == []


def test_new_rows_start_as_the_mean_of_the_rows_that_spelled_them(tiny_model_dir, extended):
    old_tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    old_rows = AutoModelForCausalLM.from_pretrained(tiny_model_dir).get_input_embeddings().weight
    model = AutoModelForCausalLM.from_pretrained(extended)
    rows = model.get_input_embeddings().weight
    assert torch.equal(rows[: len(old_tokenizer)], old_rows)
    record = json.loads((extended / VOCAB_FILE).read_text(encoding="utf-8"))
    for new_id, text in zip(record["new_token_ids"], record["tokens"], strict=True):
        pieces = old_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(pieces) > 1
        assert torch.allclose(rows[new_id], old_rows[pieces].mean(dim=0)), text
    if not model.config.tie_word_embeddings:
        assert torch.equal(model.get_output_embeddings().weight[len(old_tokenizer) :], rows[len(old_tokenizer) :])


def test_an_untied_output_head_gets_its_own_mean_rows(tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))  # untie the head
    embed, head = model.get_input_embeddings().weight, model.lm_head.weight
    mean_initialise(model, {7: [3, 4, 5]})
    assert torch.allclose(embed[7], embed[[3, 4, 5]].mean(dim=0))
    assert torch.allclose(head[7], head[[3, 4, 5]].mean(dim=0)) and not torch.allclose(head[7], embed[7])


def test_extend_vocab_explains_what_it_cannot_use(tiny_model_dir, corpus, tmp_path):
    empty, english, broken = tmp_path / "empty.txt", tmp_path / "english.txt", tmp_path / "broken.jsonl"
    empty.write_text("\n  \n", encoding="utf-8")
    english.write_text("plain English text only\n" * 20, encoding="utf-8")
    broken.write_text('{"q": "盒子"}\n{"q": \n', encoding="utf-8")
    output = tmp_path / "out"
    with pytest.raises(DataError, match="has no text"):
        extend_base(str(tiny_model_dir), [empty], output)
    with pytest.raises(PixiuError, match="no new tokens found"):
        extend_base(str(tiny_model_dir), [english], output, min_count=2)
    with pytest.raises(DataError, match=f"{broken}:2: not valid JSON"):
        extend_base(str(tiny_model_dir), [broken], output)
    with pytest.raises(DataError, match=f"{corpus}:1: field 'answer' is NoneType, not text"):
        extend_base(str(tiny_model_dir), [corpus], output, field="answer")
    with pytest.raises(DataError, match="corpus file not found"):
        extend_base(str(tiny_model_dir), [tmp_path / "missing.jsonl"], output)
    output.mkdir()
    with pytest.raises(PixiuError, match="already exists"):
        extend_base(str(tiny_model_dir), [corpus], output)


def _train(base: Path, data: Path, run_dir: Path, *overrides: str, resume: bool = False) -> None:
    """A few toy SFT steps on `base` into `run_dir`."""
    config = load_config(overrides=[*SMALL, *overrides], values={"base": str(base)})
    lora_sft.run(TOY, config, data, run_dir, resume=resume)


def test_training_on_an_extended_base_trains_only_the_new_rows_and_the_lora_weights(toy_plugin, extended, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 24)
    run_dir = tmp_path / "run"
    _train(extended, data, run_dir, "train.max_steps=3", "data.eval_records=4")
    config = json.loads((run_dir / "adapter_config.json").read_text(encoding="utf-8"))
    new_ids = new_token_ids(extended)
    assert config["trainable_token_indices"] == new_ids
    saved = load_file(str(run_dir / "adapter_model.safetensors"))
    deltas = [v for k, v in saved.items() if "trainable_tokens_delta" in k]
    assert len(deltas) == 1 and deltas[0].shape[0] == len(new_ids) and deltas[0].abs().sum() > 0
    trained = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    evaluated = CliRunner().invoke(cli, ["domain", "eval", "toy", "--adapter", str(run_dir), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)
    assert report["base"] == str(extended) and report["scores"] == {k: trained[k] for k in ("base", "adapter")}

    base = AutoModelForCausalLM.from_pretrained(extended)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    merged = load_adapter(base, run_dir).merge_and_unload()
    after = merged.state_dict()
    embed = next(k for k in before if k.endswith("embed_tokens.weight"))
    old = new_ids[0]
    assert torch.equal(after[embed][:old], before[embed][:old])  # the old vocabulary is untouched
    assert not torch.allclose(after[embed][old:], before[embed][old:])  # the new rows learned
    assert torch.equal(after["lm_head.weight"], after[embed])  # the tied head follows the new rows
    changed = {k for k in before if k not in (embed, "lm_head.weight") and not torch.equal(after[k], before[k])}
    assert changed and all(k.endswith("_proj.weight") for k in changed)  # else only the LoRA-adapted projections


def test_an_extended_run_resumes_exactly_and_serving_refuses_it_with_a_way_out(extended, tmp_path, monkeypatch):
    data = write_toy_data(tmp_path / "toy.jsonl", 24)
    steps = ["train.max_steps=4", "train.save_every=2", "data.eval_records=0", "lora.dropout=0.1"]
    _train(extended, data, tmp_path / "straight", *steps)

    real_loss, calls = lora_sft.labelled_loss, []

    def dies_in_step_three(model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_loss(model, batch)

    monkeypatch.setattr(lora_sft, "labelled_loss", dies_in_step_three)
    with pytest.raises(KeyboardInterrupt):
        _train(extended, data, tmp_path / "broken", *steps)
    monkeypatch.setattr(lora_sft, "labelled_loss", real_loss)
    _train(extended, data, tmp_path / "broken", *steps, resume=True)
    expected = load_file(str(tmp_path / "straight" / "adapter_model.safetensors"))
    actual = load_file(str(tmp_path / "broken" / "adapter_model.safetensors"))
    assert expected.keys() == actual.keys() and any("trainable_tokens_delta" in k for k in actual)
    for key in expected:
        assert actual[key].allclose(expected[key], atol=1e-6), key

    with pytest.raises(PixiuError, match=r"extend-vocab.*pixiu adapters merge"):
        read_adapter(tmp_path / "straight")


def test_a_tuning_method_that_cannot_train_the_new_rows_is_refused_by_name(toy_plugin, extended, tmp_path):
    data = write_toy_data(tmp_path / "toy.jsonl", 24)
    with pytest.raises(PixiuError, match=r"extend-vocab.*lora\.method=lora, not ia3"):
        _train(extended, data, tmp_path / "run", "train.max_steps=1", "data.eval_records=4", "lora.method=ia3")
