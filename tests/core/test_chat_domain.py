"""The core `chat` domain and the standard formats in training: the contract, pair and feedback loading in every
form, multi-turn masking, and `pixiu domain train chat` end to end on a tiny model."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from pixiu import BadRecord, Preference
from pixiu.cli import cli
from pixiu.data import IGNORE_INDEX, tokenize_example
from pixiu.default_plugins import chat
from pixiu.errors import DataError
from pixiu.feedback import load_feedback
from pixiu.formats import to_messages
from pixiu.plugins import get_domain
from pixiu.preference import load_preferences
from pixiu.testing import check_domain
from pixiu_process import TINY_TRAIN
from toy_domain import TOY

from .test_formats import PAIRS, SHAREGPT, write_jsonl


def chat_domain():
    return get_domain("chat")


def test_the_chat_domain_keeps_the_contract_on_its_mixed_format_sample() -> None:
    domain = chat_domain()
    rows = [json.loads(line) for line in domain.sample_data.read_text(encoding="utf-8").splitlines()]
    assert 60 <= len(rows) <= 120
    kinds = {next(key for key in ("instruction", "conversations", "messages") if key in row) for row in rows}
    assert kinds == {"instruction", "conversations", "messages"}
    scores = check_domain(domain, limit=len(rows))
    assert scores["rouge_l"] == pytest.approx(100.0) and scores["mean_answer_length"] > 1


def test_chat_metrics_score_overlap_and_report_answer_length() -> None:
    scores = chat.chat_metrics(["猫喜欢吃鱼", "the sky is blue"], ["猫喜欢吃鱼和肉", "grass is green"])
    assert scores["rouge_l"] == pytest.approx(100 * (10 / 12 + 2 / 7) / 2, rel=1e-3)  # F of 5/5, 5/7 and 1/4, 1/3
    assert scores["mean_answer_length"] == (5 + 4) / 2
    assert chat.chat_reward([], "猫喜欢吃鱼", "猫喜欢吃鱼") > chat.chat_reward([], "狗", "猫喜欢吃鱼")


def test_every_assistant_turn_of_a_conversation_is_learned_and_the_rest_masked(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokens = tokenize_example(tokenizer, to_messages(SHAREGPT), 256)
    learned = tokenizer.decode([t for t, label in zip(tokens.input_ids, tokens.labels, strict=True) if label != -100])
    masked = tokenizer.decode([t for t, label in zip(tokens.input_ids, tokens.labels, strict=True) if label == -100])
    assert "Hello!" in learned and "4" in learned
    assert "Be brief." in masked and "Hi" in masked and "2+2?" in masked
    assert "Hi" not in learned and "Be brief." not in learned and IGNORE_INDEX == -100


def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    write_jsonl(path, PAIRS.values())
    return path


def test_pair_runs_read_every_pair_form_in_a_domain_without_a_preference_formatter(tmp_path) -> None:
    path = pairs_file(tmp_path)
    pairs = load_preferences(path, chat_domain()).items
    assert [(p.prompt, p.chosen, p.rejected) for p in pairs] == [([{"role": "user", "content": "2+2?"}], "4", "5")] * 5
    answers = load_feedback(path, chat_domain()).items
    assert [(a.completion, a.desirable) for a in answers] == [("4", True), ("5", False)] * 5
    assert answers[-1].where == f"{path}:5"


def test_data_format_reads_pairs_instead_of_the_domains_preference_formatter(tmp_path) -> None:
    def votes_only(record):
        if "answers" not in record:
            raise BadRecord("needs answers")
        return [Preference([{"role": "user", "content": "q"}], "a", "b")]

    domain = replace(TOY, preference_formatter=votes_only)
    path = pairs_file(tmp_path)
    with pytest.raises(DataError, match=rf"{path}:2: needs answers"):  # the TRL row passes, the next goes to the domain
        load_preferences(path, domain)
    assert len(load_preferences(path, domain, data_format="auto").items) == 5
    with pytest.raises(DataError, match=rf"{path}:4: data.format is alpaca, but this row is a sharegpt pair"):
        load_preferences(path, domain, data_format="alpaca")


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_chat_on_a_sharegpt_file_end_to_end(tiny_model_dir, tmp_path) -> None:
    data = tmp_path / "dialogues.jsonl"
    write_jsonl(data, [SHAREGPT] * 12)
    run_dir = tmp_path / "run"
    result = invoke(
        "domain", "train", "chat", "--base", str(tiny_model_dir), "--data", str(data), "--output", str(run_dir),
        "--format", "sharegpt", *TINY_TRAIN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rouge_l" in result.output and (run_dir / "adapter_model.safetensors").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["records"] == 4 and set(metrics["adapter"]) >= {"rouge_l", "mean_answer_length"}
    held_out = [json.loads(line) for line in (run_dir / "eval_split.jsonl").read_text(encoding="utf-8").splitlines()]
    assert held_out[0]["messages"][-1] == {"role": "assistant", "content": "4"}
    evaluated = invoke("domain", "eval", "chat", "--adapter", "chat", "--data", str(data), "--limit", "2", "--json")
    assert json.loads(evaluated.stdout)["records"] == 2


def test_a_named_format_stops_training_at_a_row_of_another_with_its_line(tiny_model_dir, tmp_path) -> None:
    data = tmp_path / "mixed.jsonl"
    write_jsonl(data, [SHAREGPT, {"instruction": "说你好。", "output": "你好"}])
    result = invoke(
        "domain", "train", "chat", "--base", str(tiny_model_dir), "--data", str(data), "--format", "sharegpt"
    )
    assert result.exit_code != 0
    assert f"{data}:2: data.format is sharegpt" in " ".join(result.output.split())


def test_dpo_trains_chat_on_a_file_mixing_every_pair_form(tiny_model_dir, tmp_path) -> None:
    data = tmp_path / "pairs.jsonl"
    write_jsonl(data, list(PAIRS.values()) * 3)
    run_dir = tmp_path / "run"
    result = invoke(
        "domain", "train", "chat", "--method", "dpo", "--base", str(tiny_model_dir), "--data", str(data),
        "--output", str(run_dir), *TINY_TRAIN,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "registered as 'chat-dpo'" in " ".join(result.output.split())
    held_out = [json.loads(line) for line in (run_dir / "eval_pairs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(held_out) == 4 and {(p["chosen"], p["rejected"]) for p in held_out} == {("4", "5")}


def test_law_still_reads_its_records_with_its_own_formatter(installed_plugins) -> None:
    from pixiu.config import formatter_for, load_config

    law = get_domain("law")
    config = load_config([law.default_config], domain=law)
    record = json.loads(law.sample_data.read_text(encoding="utf-8").splitlines()[0])
    own = law.formatter(record) if law.settings is None else law.formatter(record, config.plugins.get("law"))
    assert config.data.format == "domain" and formatter_for(law, config)(record) == own
    with pytest.raises(BadRecord, match="fits no format"):  # CAIL records are law's own format, not a standard one
        formatter_for(law, load_config([law.default_config], ["data.format=auto"], domain=law))(record)


def test_a_long_conversation_loses_its_oldest_exchanges_before_its_last_question_is_cut(tiny_model_dir) -> None:
    from transformers import AutoTokenizer

    from pixiu.data import fit_prompt

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    old = [{"role": "user", "content": "很长的问题" * 40}, {"role": "assistant", "content": "很长的回答" * 40}]
    last = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    conversation = [{"role": "system", "content": "Be brief."}, *old, *last]
    assert fit_prompt(tokenizer, conversation, 64) == [conversation[0], *last]
    assert fit_prompt(tokenizer, conversation, 4096) == conversation
    tokens = tokenize_example(tokenizer, conversation, 64)
    assert not tokens.answer_cut and tokenizer.decode([t for t in tokens.labels if t != IGNORE_INDEX]).startswith("4")
