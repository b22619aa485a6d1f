"""The command line as users type it: help, listing, training, evaluation, errors."""

import dataclasses
import json

import pytest
from click.testing import CliRunner

import toy_domain
from pixiu import __version__
from pixiu.cli import cli
from pixiu_process import TINY_TRAIN


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def train_toy(base, data, run_dir, *options):
    """`pixiu domain train toy` on `base` and `data` into `run_dir`, seconds long (TINY_TRAIN), then `options`."""
    return invoke(
        "domain",
        "train",
        "toy",
        "--base",
        str(base),
        "--data",
        str(data),
        "--output",
        str(run_dir),
        *TINY_TRAIN,
        *options,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["domain"],
        ["domain", "train"],
        ["domain", "eval"],
        ["domain", "crawl"],
        ["plugins", "list"],
        ["adapters", "list"],
        ["models", "create-tiny"],
    ],
)
def test_help_teaches(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 5


def test_domain_list_json_shows_an_installed_domain(toy_plugin):
    rows = json.loads(invoke("domain", "list", "--json").stdout)
    assert [(r["name"], r["package"], r["version"]) for r in rows] == [
        ("chat", "pixiu", __version__),  # core's own general-chat domain
        ("toy", "toy_domain", "0.0.1"),
    ]


def test_unknown_domain_lists_known_ones(toy_plugin):
    result = invoke("domain", "train", "nosuch")
    assert result.exit_code != 0
    assert "unknown domain 'nosuch'" in result.output and "known domains: chat, toy" in result.output


def test_plugins_list_json_names_hooks(toy_plugin):
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "list", "--json").stdout)}
    assert rows["toy"]["hooks"] == ["register_domains"]
    assert rows["toy"]["source"] == "installed" and rows["toy"]["package"] == "pixiu-toy"
    assert rows["pixiu.default_plugins.model_sources"]["source"] == "built-in"


def test_a_duplicate_domain_name_disables_only_that_registration(toy_plugin, register_plugin):
    class Impostor:
        @staticmethod
        @toy_domain.hookimpl
        def register_domains(register):
            register(dataclasses.replace(toy_domain.TOY, formatter=lambda record: []))
            register(dataclasses.replace(toy_domain.TOY, name="toy2"))

    register_plugin(Impostor, "impostor")
    result = CliRunner().invoke(cli, ["domain", "list", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    names = [(r["name"], r["package"]) for r in rows]
    assert names == [("chat", "pixiu"), ("toy", "toy_domain"), ("toy2", "toy_domain")]
    assert "domain 'toy'" in result.stderr and "already registered by plugin 'toy'" in result.stderr
    plugins = {r["name"]: r for r in json.loads(invoke("plugins", "list", "--json").stdout)}
    assert plugins["toy"]["status"] == "loaded"
    assert plugins["impostor"]["status"].startswith("failed in register_domains: domain 'toy'")


def test_train_then_eval_then_list(toy_plugin, tiny_model_dir, tmp_path):
    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 30)
    run_dir = tmp_path / "run"
    trained = train_toy(tiny_model_dir, data, run_dir)
    assert trained.exit_code == 0, trained.output
    assert "base" in trained.output and "adapter" in trained.output and "exact_match" in trained.output
    assert (run_dir / "adapter_model.safetensors").is_file()

    adapters = json.loads(invoke("adapters", "list", "--json").stdout)
    assert [a["name"] for a in adapters] == ["toy"]

    evaluated = invoke("domain", "eval", "toy", "--adapter", "toy", "--limit", "3", "--json")
    report = json.loads(evaluated.stdout)
    assert report["records"] == 3 and report["base"] == str(tiny_model_dir)
    assert set(report["scores"]) == {"base", "adapter"} and "exact_match" in report["scores"]["adapter"]
    assert report["data"].endswith("eval_split.jsonl")
    assert "forgetting probe" in trained.output and "nll_per_token" in trained.output
    general = report["general"]
    assert general["records"] == 40 and set(general) >= {"base", "adapter", "seconds"}
    assert general["base"]["nll_per_token"] != general["adapter"]["nll_per_token"]  # the adapter changed the model
    plain = invoke("domain", "eval", "toy", "--adapter", "toy", "--limit", "1", "--no-general")
    assert plain.exit_code == 0 and "exact_match" in plain.output and "forgetting probe" not in plain.output


def test_malformed_line_stops_with_file_and_line(toy_plugin, tiny_model_dir, tmp_path):
    data = tmp_path / "toy.jsonl"
    data.write_text('{"q": "什么颜色？", "a": "红"}\n{"q": \n', encoding="utf-8")
    result = train_toy(tiny_model_dir, data, tmp_path / "run")
    assert result.exit_code != 0
    assert f"{data}:2: not valid JSON" in result.output and "--on-bad-record skip" in result.output


def test_skip_keeps_rejects_and_reports_count(toy_plugin, tiny_model_dir, tmp_path):
    good = toy_domain.write_toy_data(tmp_path / "good.jsonl", 20).read_text(encoding="utf-8").splitlines()
    bad = ['{"q": "没有答案的问题"}', "not json at all"]
    data = tmp_path / "toy.jsonl"
    data.write_text("\n".join(good + bad) + "\n", encoding="utf-8")
    run_dir = tmp_path / "run"
    result = train_toy(tiny_model_dir, data, run_dir, "--on-bad-record", "skip")
    assert result.exit_code == 0, result.output
    assert "2 bad records skipped" in " ".join(result.output.split())
    rejects = [json.loads(line) for line in (run_dir / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["raw"] for r in rejects] == bad
    assert json.loads((run_dir / "metrics.json").read_text())["train"]["rejected_records"] == 2


def test_missing_data_file_is_a_clear_error(toy_plugin, tmp_path):
    result = invoke("domain", "train", "toy", "--data", str(tmp_path / "nope.jsonl"))
    assert result.exit_code != 0 and "data file not found" in result.output


def test_a_plugin_that_fails_to_import_is_listed_and_isolated(toy_plugin, monkeypatch):
    import importlib.metadata

    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(name="broken", value="pixiu_no_such_module:plugin", group="pixiu")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken, *real(group=group)])
    monkeypatch.setenv("PIXIU_LOAD_PLUGINS", "toy,broken")
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "list", "--json").stdout)}
    assert rows["broken"]["status"].startswith("failed: ModuleNotFoundError")
    assert rows["toy"]["status"] == "loaded"
    assert [r["name"] for r in json.loads(invoke("domain", "list", "--json").stdout)] == ["chat", "toy"]


@pytest.mark.parametrize("base", ["./models/v1: final", "yes", "123"])
def test_train_flags_reach_the_config_as_typed(toy_plugin, captured_run, tmp_path, base):
    result = invoke(
        "domain",
        "train",
        "toy",
        "--base",
        base,
        "--max-steps",
        "3",
        "--on-bad-record",
        "skip",
        "--report-to",
        "mlflow",
        "--data",
        str(tmp_path / "toy.jsonl"),
        "--output",
        str(tmp_path / "run"),
    )
    assert "interrupted" in result.output
    ((_, config),) = captured_run
    assert config.base == base and config.train.max_steps == 3 and config.data.on_bad_record == "skip"
    assert config.train.report_to == "mlflow"


def test_train_set_under_a_value_is_a_clear_error(toy_plugin, captured_run):
    result = invoke("domain", "train", "toy", "--set", "lora.r.x=1", "--set", "lora.target_modules=[1]")
    assert result.exit_code != 0 and not captured_run
    assert "lora.r is a value" in result.output and "lora.target_modules.0" in result.output


def test_eval_uses_the_adapters_recorded_config(toy_plugin, tiny_model_dir, tmp_path, monkeypatch):
    import pixiu.evaluation

    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 20)
    trained = train_toy(tiny_model_dir, data, tmp_path / "run", "--set", "eval.batch_size=3")
    assert trained.exit_code == 0, trained.output
    seen = {}

    def spy(model, tokenizer, domain, examples, args, *, max_prompt_tokens, variants, predictions_path=None):
        seen.update(max_prompt_tokens=max_prompt_tokens, max_new_tokens=args.max_new_tokens, batch=args.batch_size)
        return pixiu.evaluation.Evaluation(len(examples), {v: {} for v in variants}, {v: [] for v in variants})

    monkeypatch.setattr(pixiu.evaluation, "evaluate", spy)
    pixiu.evaluation.evaluate_domain("toy", adapter="toy")
    assert seen == {"max_prompt_tokens": 128, "max_new_tokens": 4, "batch": 3}  # as trained, not the defaults


def test_resume_continues_the_recorded_run_and_refuses_contradictions(
    toy_plugin, tiny_model_dir, tmp_path, monkeypatch
):
    import shlex

    import yaml

    import pixiu.recipes.lora_sft as recipe

    data = toy_domain.write_toy_data(tmp_path / "toy.jsonl", 30)
    run_dir = tmp_path / "run"
    real_loss, calls = recipe.labelled_loss, []

    def interrupted_loss(model, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_loss(model, batch)

    monkeypatch.setattr(recipe, "labelled_loss", interrupted_loss)
    killed = train_toy(
        tiny_model_dir, data, run_dir, "--max-steps", "4", "--set", "train.save_every=2", "--set", "train.lr=1e-3"
    )
    assert killed.exit_code == 130 and "interrupted" in killed.output
    monkeypatch.setattr(recipe, "labelled_loss", real_loss)
    hint = shlex.split(killed.output.split("Continue with:")[1].strip().splitlines()[0])
    assert hint[:3] == ["pixiu", "domain", "train"] and "--base" not in hint and "--data" not in hint
    split = (run_dir / "eval_split.jsonl").read_text(encoding="utf-8")

    refused = invoke(
        "domain",
        "train",
        "toy",
        "--resume",
        "--output",
        str(run_dir),
        "--max-steps",
        "9",
        "--set",
        "train.lr=1e-3",
        "--data",
        str(toy_domain.write_toy_data(tmp_path / "other.jsonl", 30)),
    )
    assert refused.exit_code != 0
    assert "train.max_steps: recorded 4, given 9" in refused.output and "data: recorded" in refused.output
    assert "train.lr" not in refused.output  # repeating a recorded value is fine

    data.rename(tmp_path / "moved.jsonl")
    gone = invoke(*hint[1:])
    assert gone.exit_code != 0 and f"data file {data} is gone" in gone.output
    (tmp_path / "moved.jsonl").rename(data)

    resumed = invoke(*hint[1:])
    assert resumed.exit_code == 0, resumed.output
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    record = yaml.safe_load((run_dir / "pixiu_run.yaml").read_text(encoding="utf-8"))
    assert record["status"] == "finished" and record["base_model"] == str(tiny_model_dir)
    assert record["config"]["train"]["max_steps"] == 4 and record["config"]["train"]["lr"] == 1e-3
    assert (run_dir / "eval_split.jsonl").read_text(encoding="utf-8") == split


def test_runs_started_in_the_same_second_get_their_own_folders(pixiu_home, monkeypatch):
    from datetime import datetime

    import pixiu.runs as runs

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 2, 3, 4, 5)

    monkeypatch.setattr(runs, "datetime", Frozen)
    first, second = runs.new_run_dir("toy"), runs.new_run_dir("toy")
    assert first.name == "toy-20260102-030405" and second.name == "toy-20260102-030405-2"
    assert first.is_dir() and second.is_dir()
