"""The command line as users type it: help, listing, training, evaluation, errors."""

import json

import pytest
from click.testing import CliRunner

import toy_domain
from pixiu.cli import cli
from pixiu.plugins import get_domains
from pixiu_process import TINY_TRAIN


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command", [[], ["domain"], ["domain", "train"], ["domain", "eval"], ["domain", "crawl"],
                                     ["plugins", "list"], ["adapters", "list"], ["models", "create-tiny"]])
def test_help_teaches(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 5


def test_domain_list_json_shows_builtin_law(installed_plugins):
    rows = json.loads(invoke("domain", "list", "--json").stdout)
    law = next(r for r in rows if r["name"] == "law")
    assert law["package"] == "pixiu_law" and law["sample_data"].endswith(".jsonl")


def test_unknown_domain_lists_known_ones(installed_plugins):
    result = invoke("domain", "train", "nosuch")
    assert result.exit_code != 0
    assert "unknown domain 'nosuch'" in result.output and "law" in result.output


def test_plugins_list_json_names_hooks(installed_plugins):
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "list", "--json").stdout)}
    assert rows["law"]["hooks"] == ["register_domains"]
    assert rows["law"]["source"] == "installed" and rows["law"]["package"] == "pixiu-law"
    assert rows["pixiu.default_plugins.model_sources"]["source"] == "built-in"


def test_duplicate_domain_names_are_an_error(installed_plugins, register_plugin):
    class Impostor:
        @staticmethod
        @toy_domain.hookimpl
        def register_domains(register):
            register(toy_domain.TOY.__class__(**{**toy_domain.TOY.__dict__, "name": "law"}))

    register_plugin(Impostor, "impostor")
    result = invoke("domain", "list")
    assert result.exit_code != 0
    assert "domain 'law' is registered twice" in result.output and "pixiu_law" in result.output


def test_train_then_eval_then_list(installed_plugins, tiny_model_dir, tmp_path):
    data = tmp_path / "law.jsonl"
    sample = get_domains()["law"].sample_data.read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(sample[:30]) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    trained = invoke("domain", "train", "law", "--base", str(tiny_model_dir), "--data", str(data),
                     "--output", str(run_dir), *TINY_TRAIN)
    assert trained.exit_code == 0, trained.output
    assert "base" in trained.output and "adapter" in trained.output and "accuracy" in trained.output
    assert (run_dir / "adapter_model.safetensors").is_file()

    adapters = json.loads(invoke("adapters", "list", "--json").stdout)
    assert [a["name"] for a in adapters] == ["law"]

    evaluated = invoke("domain", "eval", "law", "--adapter", "law", "--limit", "3", "--json")
    report = json.loads(evaluated.stdout)
    assert report["records"] == 3 and report["base"] == str(tiny_model_dir)
    assert set(report["scores"]) == {"base", "adapter"} and "macro_f1" in report["scores"]["adapter"]
    assert report["data"].endswith("eval_split.jsonl")


def test_malformed_line_stops_with_file_and_line(installed_plugins, tiny_model_dir, tmp_path):
    data = tmp_path / "law.jsonl"
    data.write_text('{"fact": "张某盗窃。", "meta": {"accusation": ["盗窃"]}}\n{"fact": \n', encoding="utf-8")
    result = invoke("domain", "train", "law", "--base", str(tiny_model_dir), "--data", str(data),
                    "--output", str(tmp_path / "run"), *TINY_TRAIN)
    assert result.exit_code != 0
    assert f"{data}:2: not valid JSON" in result.output and "--on-bad-record skip" in result.output


def test_skip_keeps_rejects_and_reports_count(installed_plugins, tiny_model_dir, tmp_path):
    sample = get_domains()["law"].sample_data.read_text(encoding="utf-8").splitlines()[:20]
    bad = ['{"fact": "无罪名的记录。", "meta": {}}', "not json at all"]
    data = tmp_path / "law.jsonl"
    data.write_text("\n".join(sample + bad) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = invoke("domain", "train", "law", "--base", str(tiny_model_dir), "--data", str(data),
                    "--output", str(run_dir), "--on-bad-record", "skip", *TINY_TRAIN)
    assert result.exit_code == 0, result.output
    assert "2 bad records skipped" in " ".join(result.output.split())
    rejects = [json.loads(line) for line in (run_dir / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["raw"] for r in rejects] == bad
    assert json.loads((run_dir / "metrics.json").read_text())["train"]["rejected_records"] == 2


def test_missing_data_file_is_a_clear_error(installed_plugins, tmp_path):
    result = invoke("domain", "train", "law", "--data", str(tmp_path / "nope.jsonl"))
    assert result.exit_code != 0 and "data file not found" in result.output


def test_a_plugin_that_fails_to_import_is_listed_and_isolated(installed_plugins, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(name="broken", value="pixiu_no_such_module:plugin", group="pixiu")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken, *real(group=group)])
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "list", "--json").stdout)}
    assert rows["broken"]["status"].startswith("failed: ModuleNotFoundError")
    assert rows["law"]["status"] == "loaded"
    assert "law" in [r["name"] for r in json.loads(invoke("domain", "list", "--json").stdout)]


@pytest.fixture
def captured_run(monkeypatch):
    """Replace the training recipe by one that records the domain and config it was given."""
    import pixiu.recipes.lora_sft as recipe

    calls = []

    def fake_run(domain, config, data_path, run_dir, *, resume=False):
        calls.append((domain, config))
        raise KeyboardInterrupt  # stops the command before it prints scores

    monkeypatch.setattr(recipe, "run", fake_run)
    return calls


@pytest.mark.parametrize("base", ["./models/v1: final", "yes", "123"])
def test_train_flags_reach_the_config_as_typed(installed_plugins, captured_run, tmp_path, base):
    result = invoke("domain", "train", "law", "--base", base, "--max-steps", "3", "--on-bad-record", "skip",
                    "--data", str(tmp_path / "law.jsonl"), "--output", str(tmp_path / "run"))
    assert "interrupted" in result.output
    ((_, config),) = captured_run
    assert config.base == base and config.train.max_steps == 3 and config.data.on_bad_record == "skip"


def test_train_set_under_a_value_is_a_clear_error(installed_plugins, captured_run):
    result = invoke("domain", "train", "law", "--set", "lora.r.x=1", "--set", "lora.target_modules=[1]")
    assert result.exit_code != 0 and not captured_run
    assert "lora.r is a value" in result.output and "lora.target_modules.0" in result.output


def test_train_hands_the_domain_its_settings(installed_plugins, captured_run, tmp_path):
    invoke("domain", "train", "zhihu", "--set", "plugins.zhihu.top_answers=5", "--output", str(tmp_path / "run"))
    ((domain, config),) = captured_run
    assert domain.name == "zhihu" and config.plugins["zhihu"].top_answers == 5
    refused = invoke("domain", "train", "zhihu", "--set", "plugins.law.labels=[a]", "--set", "plugins.zhihu.top=1")
    assert refused.exit_code != 0 and "plugins.law: this run is for domain 'zhihu'" in refused.output
    assert "unknown key 'plugins.zhihu.top'; known keys here: max_prompt_chars, top_answers" in refused.output
