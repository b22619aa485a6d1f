"""pytest fixtures for pixiu and its plugins: an isolated PIXIU_HOME, no auto-loaded plugins, tiny models.

Use them from a plugin's `tests/conftest.py`:

    from pixiu.testing.fixtures import *  # noqa: F403

`pixiu_home` and `no_installed_plugins` apply to every test; the rest are asked for by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest

__all__ = [
    "installed_plugins",
    "no_installed_plugins",
    "pixiu_home",
    "register_plugin",
    "tiny_model_dir",
    "tiny_qwen2_dir",
]


@pytest.fixture(autouse=True)
def pixiu_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point PIXIU_HOME at an empty per-test folder, so no test reads or writes ~/.pixiu."""
    home = tmp_path / "pixiu_home"
    monkeypatch.setenv("PIXIU_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def no_installed_plugins(monkeypatch: pytest.MonkeyPatch):
    """Load no entry-point plugins, only core defaults, with a fresh plugin manager around each test."""
    from pixiu.plugins import get_plugin_manager

    monkeypatch.setenv("PIXIU_LOAD_PLUGINS", "")
    get_plugin_manager.cache_clear()
    yield
    get_plugin_manager.cache_clear()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random llama chat model folder, created once per test session; treat it as read-only."""
    from pixiu.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny-llama"), arch="llama")


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random qwen2 chat model folder, created once per test session; treat it as read-only."""
    from pixiu.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), arch="qwen2")


@pytest.fixture
def installed_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the installed entry-point plugins (the built-in domains among them) for this test."""
    from pixiu.plugins import get_plugin_manager

    monkeypatch.delenv("PIXIU_LOAD_PLUGINS")
    get_plugin_manager.cache_clear()


@pytest.fixture
def register_plugin():
    """Register plugin objects for one test; they are unregistered afterwards, whatever happens."""
    from pixiu.plugins import get_plugin_manager

    registered = []

    def register(plugin: object, name: str) -> None:
        get_plugin_manager().register(plugin, name=name)
        registered.append(plugin)

    yield register
    for plugin in registered:
        if get_plugin_manager().is_registered(plugin):
            get_plugin_manager().unregister(plugin)
