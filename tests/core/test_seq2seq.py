"""Encoder-decoder bases (t5, mt5): tiny models, collation, the answer loss, exact resume, evaluation, refusals.

Tiny random models prove the plumbing, not answer quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, T5Config

from pixiu.cli.models import group as models_cli
from pixiu.config import load_config
from pixiu.data import IGNORE_INDEX, render
from pixiu.errors import ConfigError, PixiuError
from pixiu.loss import labelled_loss
from pixiu.models import load_base
from pixiu.recipes import lora_sft
from pixiu.seq2seq import collate_seq2seq, example_codec, is_encoder_decoder, tokenize_seq2seq
from pixiu.tiny import create_tiny_model
from toy_domain import TOY, write_toy_data

CHAT = [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "你好"},
    {"role": "assistant", "content": "hi there"},
    {"role": "user", "content": "again"},
    {"role": "assistant", "content": "好的"},
]
SMALL = ["data.max_seq_len=48", "train.batch_tokens=192", "eval.max_new_tokens=3", "train.lr=1e-3"]


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny t5 folder, made once for the module."""
    return create_tiny_model(tmp_path_factory.mktemp("t5"), arch="t5")


def test_create_tiny_mt5_loads_as_a_seq2seq_model_and_round_trips_chinese(tmp_path: Path):
    made = CliRunner().invoke(models_cli, ["create-tiny", str(tmp_path / "m"), "--arch", "mt5"])
    assert made.exit_code == 0, made.output
    config = json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "mt5" and config["feed_forward_proj"] == "gated-gelu" and config["num_layers"] == 2
    model, tokenizer = load_base(str(tmp_path / "m"))
    assert isinstance(model, AutoModelForSeq2SeqLM._model_mapping[type(model.config)]) and is_encoder_decoder(model)
    assert model.config.decoder_start_token_id == tokenizer.pad_token_id == tokenizer.convert_tokens_to_ids("<pad>")
    assert tokenizer.eos_token == "</s>" and "### Assistant: " in tokenizer.chat_template  # the documented fallback
    text = "被告人张某犯盗窃罪 (theft), 判处有期徒刑一年。"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_the_encoder_reads_the_conversation_and_the_labels_are_the_last_answer(tiny_t5):
    _, tokenizer = load_base(str(tiny_t5))
    example = tokenize_seq2seq(tokenizer, CHAT, 256)
    assert tokenizer.decode(example.input_ids) == render(tokenizer, CHAT[:-1], add_generation_prompt=True)
    assert tokenizer.decode(example.input_ids).endswith("again\n### Assistant: ")  # the generation prompt ends it
    assert tokenizer.decode(example.labels) == "好的</s>" and not example.answer_cut
    cut = tokenize_seq2seq(tokenizer, CHAT, 8)  # the oldest turns go first, then the prompt is cut from the left
    assert len(cut.input_ids) == 8 and tokenizer.decode(cut.input_ids).endswith("## Assistant: ")
    assert len(tokenize_seq2seq(tokenizer, [*CHAT[:-1], {"role": "assistant", "content": "长" * 20}], 4).labels) == 4
    batch = collate_seq2seq([example, cut], [1, 0], tokenizer.pad_token_id)
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, len(example.input_ids))
    assert batch["attention_mask"][0].tolist() == [1] * 8 + [0] * (len(example.input_ids) - 8)
    assert batch["input_ids"][0, 8:].eq(tokenizer.pad_token_id).all()
    assert batch["labels"].shape == (2, max(len(example.labels), len(cut.labels)))
    assert batch["labels"][1, : len(example.labels)].tolist() == example.labels
    assert (batch["labels"][0, len(cut.labels) :] == IGNORE_INDEX).all()


def test_the_answer_loss_equals_transformers_own_seq2seq_loss(tiny_t5):
    model, tokenizer = load_base(str(tiny_t5))
    tokenize, collate = example_codec(model)
    rows = [tokenize(tokenizer, CHAT, 64), tokenize(tokenizer, CHAT[:3], 64)]
    batch = collate(rows, [0, 1], tokenizer.pad_token_id)
    total, count = labelled_loss(model, batch)
    assert count == sum(len(r.labels) for r in rows)
    with torch.no_grad():
        expected = model(**batch).loss  # the mean cross-entropy over the labelled decoder positions
    assert float(total) / count == pytest.approx(float(expected), rel=1e-5)


def test_an_interrupted_t5_run_resumes_exactly_and_evaluates(tiny_t5, tmp_path, monkeypatch, toy_plugin):
    from pixiu.evaluation import evaluate_domain

    data = write_toy_data(tmp_path / "toy.jsonl", 24)
    general = tmp_path / "general.jsonl"  # a 3-question forgetting probe instead of the bundled 40
    rows = [{"question": f"{n}+{n}等于几？", "answer": str(2 * n)} for n in range(3)]
    general.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    settings = [*SMALL, "train.max_steps=4", "train.save_every=2", "data.eval_records=2", "lora.dropout=0.1"]
    settings.append(f"eval.general_data={general}")
    config = load_config(overrides=settings, values={"base": str(tiny_t5)})
    no_probe = load_config(overrides=[*settings, "eval.general=false"], values={"base": str(tiny_t5)})
    lora_sft.run(TOY, no_probe, data, tmp_path / "straight")  # the probe does not touch training
    real_loss, calls = lora_sft.labelled_loss, []

    def dies_at_step_4(model, batch):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # after the step-2 checkpoint
        return real_loss(model, batch)

    monkeypatch.setattr(lora_sft, "labelled_loss", dies_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        lora_sft.run(TOY, config, data, tmp_path / "broken")
    monkeypatch.setattr(lora_sft, "labelled_loss", real_loss)
    summary = lora_sft.run(TOY, config, data, tmp_path / "broken", resume=True)
    logs = [
        [json.loads(line)["loss"] for line in (tmp_path / run / "train_log.jsonl").read_text().splitlines()]
        for run in ("straight", "broken")
    ]
    assert len(logs[0]) == 4 and logs[1] == pytest.approx(logs[0], rel=1e-5)
    expected, actual = (load_file(str(tmp_path / run / "adapter_model.safetensors")) for run in ("straight", "broken"))
    assert expected.keys() == actual.keys() and any(".encoder." in k for k in actual)
    assert all(actual[k].allclose(expected[k], atol=1e-6) for k in expected)
    metrics = summary.metrics
    assert metrics["records"] == 2 and set(metrics["adapter"]) == {"exact_match"}
    assert metrics["general"]["records"] == 3 and metrics["general"]["adapter"]["nll_per_token"] > 0  # the probe ran
    report = evaluate_domain("toy", adapter=str(tmp_path / "broken"), general=False)  # `pixiu domain eval`
    assert report["records"] == 2 and report["scores"]["adapter"] == metrics["adapter"]


@pytest.mark.parametrize(
    ("setting", "refusal"),
    [
        ("train.method=dpo", r"train.method=dpo needs a decoder-only base.*--method sft"),
        ("lora.method=prefix", r"lora.method=prefix does not train an encoder-decoder base \(t5\); use one of lora,"),
        ("lora.method=freeze", r"lora.method=freeze does not train"),
    ],
)
def test_what_an_encoder_decoder_cannot_train_is_refused_before_the_weights_load(tmp_path, setting, refusal):
    T5Config(vocab_size=64, d_model=8, num_layers=1, num_heads=1, d_kv=8, d_ff=16).save_pretrained(tmp_path / "t5")
    data = write_toy_data(tmp_path / "toy.jsonl", 4)
    config = load_config(overrides=[setting], values={"base": str(tmp_path / "t5")})
    with pytest.raises(ConfigError, match=refusal):  # the folder has no weights: reaching them would fail differently
        lora_sft.run(TOY, config, data, tmp_path / "run")


def test_an_unknown_encoder_decoder_family_is_refused_by_name(tmp_path):
    from transformers import PegasusConfig

    PegasusConfig(vocab_size=64, d_model=8, encoder_layers=1, decoder_layers=1).save_pretrained(tmp_path)
    with pytest.raises(PixiuError, match=r"'pegasus' model, which pixiu does not load.*t5 and mt5"):
        load_base(str(tmp_path))


def test_an_ia3_t5_adapter_merges_into_a_t5_that_answers_as_peft(tiny_t5, tmp_path):
    from peft import PeftModel

    from pixiu.merge import merge_adapter

    data = write_toy_data(tmp_path / "toy.jsonl", 12)
    settings = [*SMALL, "train.max_steps=2", "data.eval_records=0", "lora.method=ia3", "train.lr=1e-1"]
    lora_sft.run(TOY, load_config(overrides=settings, values={"base": str(tiny_t5)}), data, tmp_path / "run")
    merged = merge_adapter(tmp_path / "run", tmp_path / "merged", base=str(tiny_t5))
    ids, start = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([[1537, 40, 41]])  # 1537: <pad>, the decoder start
    with torch.no_grad():
        logits = AutoModelForSeq2SeqLM.from_pretrained(merged)(input_ids=ids, decoder_input_ids=start).logits
        peft = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(tiny_t5), str(tmp_path / "run"))
        expected = peft(input_ids=ids, decoder_input_ids=start).logits
        plain = AutoModelForSeq2SeqLM.from_pretrained(tiny_t5)(input_ids=ids, decoder_input_ids=start).logits
    assert torch.allclose(logits, expected, atol=1e-4) and not torch.allclose(logits, plain, atol=1e-4)
