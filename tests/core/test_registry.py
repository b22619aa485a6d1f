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
    register_adapter("toy", "toy", first, "base", {"adapter": {"accuracy": 1.0}})
    register_adapter("toy", "toy", second, "base", {})
    entries = list_adapters()
    assert [e.path for e in entries] == [str(second.resolve()), str(first.resolve())]
    assert resolve_adapter("toy") == second.resolve()


def test_a_folder_is_accepted_directly(tmp_path):
    folder = make_run(tmp_path, "direct")
    assert resolve_adapter(str(folder)) == folder


def test_unknown_name_lists_the_known_ones(tmp_path):
    register_adapter("toy", "toy", make_run(tmp_path, "r1"), "base", {})
    with pytest.raises(PixiuError, match="registered adapters: toy"):
        resolve_adapter("other")


_REGISTER_MANY = """
import sys
from pathlib import Path
from pixiu.registry import register_adapter

root, worker, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(count):
    folder = root / f"{worker}-{i}"
    folder.mkdir()
    register_adapter(f"toy{worker}", "toy", folder, "base", {})
"""


def test_parallel_processes_lose_no_entry(tmp_path):
    import subprocess
    import sys

    workers, each = 6, 20
    processes = [
        subprocess.Popen([sys.executable, "-c", _REGISTER_MANY, str(tmp_path), str(w), str(each)])
        for w in range(workers)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0] * workers
    entries = list_adapters()
    assert len(entries) == workers * each
    assert {e.name for e in entries} == {f"toy{w}" for w in range(workers)}
    assert not list(tmp_path.parent.rglob(".adapters.json.*.tmp"))  # no temp file left behind
