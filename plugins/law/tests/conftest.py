"""Fixtures of the law tests: pixiu's own test fixtures, as any plugin uses them."""

import pytest

from pixiu.testing.fixtures import *  # noqa: F403


@pytest.fixture
def law_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the installed `law` entry point, and no other plugin, for this test."""
    from pixiu.plugins import get_plugin_manager

    monkeypatch.setenv("PIXIU_LOAD_PLUGINS", "law")
    get_plugin_manager.cache_clear()
