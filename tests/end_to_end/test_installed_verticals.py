"""The built-in verticals as users get them: three separate distributions, found and removed like any plugin."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pixiu.cli import cli

VERTICALS = {"law": "pixiu-law", "zhihu": "pixiu-zhihu", "medical": "pixiu-medical"}


def invoke_json(*args: str) -> list[dict]:
    """Run `pixiu ARGS --json` in-process and parse what it printed."""
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_each_vertical_is_its_own_installed_distribution(installed_plugins) -> None:
    rows = {row["name"]: row for row in invoke_json("plugins", "list")}
    for name, distribution in VERTICALS.items():
        assert rows[name]["package"] == distribution and rows[name]["source"] == "installed"
        assert rows[name]["status"] == "loaded" and "register_domains" in rows[name]["hooks"]


def test_domain_list_shows_the_verticals_with_their_recipes_and_data(installed_plugins) -> None:
    rows = {row["name"]: row for row in invoke_json("domain", "list")}
    assert set(VERTICALS) <= set(rows)
    for name in VERTICALS:
        assert rows[name]["package"] == f"pixiu_{name}"
        assert rows[name]["sample_data"].endswith(".jsonl") and rows[name]["default_config"].endswith(".yaml")


def test_uninstalling_a_vertical_removes_its_distribution(monkeypatch) -> None:
    from pixiu import plugin_packages

    calls = []
    monkeypatch.setattr(plugin_packages, "_pip", lambda *args: calls.append(args))
    result = CliRunner().invoke(cli, ["plugins", "uninstall", "law"])
    assert result.exit_code == 0, result.output
    assert calls == [("uninstall", "--yes", "pixiu-law")]


def test_train_hands_zhihu_its_settings(installed_plugins, captured_run, tmp_path):
    CliRunner().invoke(
        cli, ["domain", "train", "zhihu", "--set", "plugins.zhihu.top_answers=5", "--output", str(tmp_path / "run")]
    )
    ((domain, config),) = captured_run
    assert domain.name == "zhihu" and config.plugins["zhihu"].top_answers == 5
    refused = CliRunner().invoke(
        cli, ["domain", "train", "zhihu", "--set", "plugins.law.labels=[a]", "--set", "plugins.zhihu.top=1"]
    )
    assert refused.exit_code != 0 and "plugins.law: this run is for domain 'zhihu'" in refused.output
    assert "unknown key 'plugins.zhihu.top'; known keys here: max_prompt_chars, top_answers" in refused.output
