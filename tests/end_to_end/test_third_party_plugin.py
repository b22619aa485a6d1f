"""A third-party domain from nothing to served, as its authors would do it: scaffold, test, install, list,
train, serve next to a built-in domain, uninstall. Every step runs the real `pixiu` command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pixiu_process import PIXIU, TINY_TRAIN, pixiu_server

NAME = "acme_support"
DIST = "pixiu-acme-support"


def pixiu(*args: str) -> str:
    """Run `pixiu ARGS`; its stdout, or a failure showing everything it printed."""
    done = subprocess.run([*PIXIU, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"pixiu {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def listed(what: str) -> dict[str, dict]:
    """`pixiu WHAT list --json`, by name."""
    return {row["name"]: row for row in json.loads(pixiu(what, "list", "--json"))}


@pytest.fixture
def clean_environment():
    """Make sure the plugin package is not installed after the test, whatever happened."""
    yield
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", DIST], capture_output=True, check=False)


def test_scaffold_install_train_serve_uninstall(
    tmp_path: Path, tiny_model_dir: Path, installed_plugins, clean_environment
) -> None:
    assert "created" in pixiu("plugins", "new", NAME, "--dir", str(tmp_path))
    package = tmp_path / DIST
    own_tests = subprocess.run([sys.executable, "-m", "pytest", "-q"], cwd=package, capture_output=True, text=True)
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr

    installed = pixiu("plugins", "install", str(package), "--", "--no-build-isolation", "--quiet")
    assert f"plugin '{NAME}' installed (package {DIST})" in installed
    assert {NAME, "law"} <= set(listed("domain"))
    row = listed("plugins")[NAME]
    assert (row["source"], row["package"], row["status"]) == ("installed", DIST, "loaded")
    assert row["hooks"] == ["process_response", "register_domains"]

    for domain in (NAME, "law"):
        trained = pixiu("domain", "train", domain, "--base", str(tiny_model_dir), *TINY_TRAIN)
        assert "adapter" in trained
    assert set(listed("adapters")) == {NAME, "law"}

    with pixiu_server(["--base", str(tiny_model_dir), "--threads", "1"]) as (url, health):
        assert sorted(health["adapters"]) == sorted([NAME, "law"])
        for model in (NAME, "law"):
            body = {"model": model, "messages": [{"role": "user", "content": "Can I return it?"}], "max_tokens": 4}
            answer = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
            assert answer.status_code == 200 and answer.json()["model"] == model

    assert f"uninstalled {DIST} (plugins: {NAME})" in pixiu("plugins", "uninstall", NAME)
    assert NAME not in listed("domain") and "law" in listed("domain")
