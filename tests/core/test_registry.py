"""The adapter registry: newest of a name wins, older runs stay listed."""

import pytest

from pixiu.errors import PixiuError
from pixiu.registry import list_adapters, register_adapter, resolve_adapter


def make_run(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return folder


def test_latest_wins_and_older_are_kept(tmp_path):
    first, second = make_run(tmp_path, "r1"), make_run(tmp_path, "r2")
    register_adapter("law", "law", first, "base", {"adapter": {"accuracy": 1.0}})
    register_adapter("law", "law", second, "base", {})
    entries = list_adapters()
    assert [e.path for e in entries] == [str(second.resolve()), str(first.resolve())]
    assert resolve_adapter("law") == second.resolve()


def test_a_folder_is_accepted_directly(tmp_path):
    folder = make_run(tmp_path, "direct")
    assert resolve_adapter(str(folder)) == folder


def test_unknown_name_lists_the_known_ones(tmp_path):
    register_adapter("law", "law", make_run(tmp_path, "r1"), "base", {})
    with pytest.raises(PixiuError, match="registered adapters: law"):
        resolve_adapter("medical")
