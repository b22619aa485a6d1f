"""Core tests use pixiu's own test fixtures, as every plugin's tests do, and a toy domain as their plugin."""

from __future__ import annotations

import pytest

from distributions import add_distribution
from pixiu.testing.fixtures import *  # noqa: F403


@pytest.fixture
def toy_plugin(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install the toy domain (tests/toy_domain.py) as distribution `pixiu-toy` and load only it; returns "toy".

    It goes through the same entry-point loading as a pip-installed plugin, so core's tests need no vertical.
    """
    from pixiu.plugins import get_plugin_manager

    folder = tmp_path_factory.mktemp("toy-distribution")
    add_distribution(folder, "pixiu-toy", {"toy": "toy_domain"})
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PIXIU_LOAD_PLUGINS", "toy")
    get_plugin_manager.cache_clear()
    return "toy"


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
