"""`pixiu plugins new|install|uninstall`: what they create, and their errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import tomllib
from click.testing import CliRunner

import pixiu
from pixiu.cli import cli
from pixiu.hookspecs import HOOK_API


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_new_scaffolds_an_installable_package(tmp_path: Path) -> None:
    result = invoke("plugins", "new", "finance", "--dir", str(tmp_path), "--description", "Reads balance sheets.")
    assert result.exit_code == 0, result.output
    package = tmp_path / "pixiu-finance"
    project = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == "pixiu-finance" and project["dependencies"] == ["pixiu>=0.1"]
    assert project["entry-points"]["pixiu"] == {"finance": "pixiu_finance.plugin"}
    plugin = (package / "pixiu_finance" / "plugin.py").read_text(encoding="utf-8")
    assert f'PIXIU_HOOK_API = ">={HOOK_API},<2"' in plugin and 'description="Reads balance sheets."' in plugin
    for part in (
        "README.md",
        "pixiu_finance/sample_data/sample.jsonl",
        "pixiu_finance/configs/default.yaml",
        "pixiu_finance/spiders/faq.py",
        "pixiu_finance/reward.py",
        "tests/test_domain.py",
        "tests/test_spider.py",
    ):
        assert (package / part).is_file(), part
    assert "pixiu plugins install" in result.output and "pixiu domain train finance" in result.output


def test_the_scaffolds_own_tests_pass_check_domain_included(tmp_path: Path) -> None:
    assert invoke("plugins", "new", "finance", "--dir", str(tmp_path)).exit_code == 0
    package = tmp_path / "pixiu-finance"
    core = str(Path(pixiu.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), core])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests"],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check_domain" in (package / "tests" / "test_domain.py").read_text(encoding="utf-8")


def test_new_refuses_bad_names_and_existing_folders(tmp_path: Path) -> None:
    bad = invoke("plugins", "new", "My-Domain", "--dir", str(tmp_path))
    assert bad.exit_code != 0 and "must be a lower-case Python identifier" in bad.output
    assert invoke("plugins", "new", "finance", "--dir", str(tmp_path)).exit_code == 0
    again = invoke("plugins", "new", "finance", "--dir", str(tmp_path))
    assert again.exit_code != 0 and "already exists" in again.output


def test_install_reports_a_pip_failure(tmp_path: Path) -> None:
    result = invoke("plugins", "install", str(tmp_path / "missing-folder"), "--", "--no-index", "--quiet")
    assert result.exit_code != 0 and "failed (exit code" in result.output


def test_uninstall_runs_pip_for_the_plugins_distribution(tmp_path: Path, monkeypatch) -> None:
    from distributions import add_distribution
    from pixiu import plugin_packages

    add_distribution(tmp_path, "pixiu-toy", {"toy": "toy_domain"})
    monkeypatch.syspath_prepend(str(tmp_path))
    calls = []
    monkeypatch.setattr(plugin_packages, "_pip", lambda *args: calls.append(args))
    result = invoke("plugins", "uninstall", "toy")
    assert result.exit_code == 0, result.output
    assert calls == [("uninstall", "--yes", "pixiu-toy")] and "uninstalled pixiu-toy (plugins: toy)" in result.output


def test_uninstall_refuses_unknown_plugins_and_lists_the_installed_ones(tmp_path: Path, monkeypatch) -> None:
    from distributions import add_distribution

    add_distribution(tmp_path, "pixiu-toy", {"toy": "toy_domain"})
    monkeypatch.syspath_prepend(str(tmp_path))
    unknown = invoke("plugins", "uninstall", "nosuch")
    assert unknown.exit_code != 0 and "no installed plugin" in unknown.output and "toy (pixiu-toy)" in unknown.output


def test_new_warns_that_the_domain_name_is_taken(tmp_path: Path, toy_plugin: str) -> None:
    result = invoke("plugins", "new", "toy", "--dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "warning: a domain 'toy' is already installed" in result.stderr
    assert "already installed" not in invoke("plugins", "new", "finance", "--dir", str(tmp_path)).output


def test_install_checks_that_the_installed_plugin_loads(monkeypatch, toy_plugin: str) -> None:
    import importlib.metadata

    import pixiu.plugin_packages

    real = importlib.metadata.entry_points
    broken = importlib.metadata.EntryPoint(name="broken", value="pixiu_no_such_module:plugin", group="pixiu")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [broken, *real(group=group)])
    monkeypatch.setenv("PIXIU_LOAD_PLUGINS", "toy,broken")
    monkeypatch.setattr(pixiu.plugin_packages, "install", lambda spec, args: {"broken": "pixiu-broken"})
    result = invoke("plugins", "install", "pixiu-broken")
    assert result.exit_code != 0
    assert "does not load" in result.output and "broken (pixiu-broken): failed: ModuleNotFoundError" in result.output
    monkeypatch.setattr(pixiu.plugin_packages, "install", lambda spec, args: {"toy": "pixiu-toy"})
    assert invoke("plugins", "install", "pixiu-toy").exit_code == 0
