"""Host allocator settings: set by the CLI before torch loads, never over the user's own, and glibc takes them."""

from __future__ import annotations

import ctypes
import json
import os
import platform
import subprocess
import sys

import pytest

from pixiu import host_memory
from pixiu.host_memory import (
    M_MMAP_THRESHOLD,
    M_TRIM_THRESHOLD,
    MMAP_THRESHOLD_BYTES,
    TRIM_THRESHOLD_BYTES,
    tune_host_allocator,
)

ON_GLIBC = sys.platform == "linux" and platform.libc_ver()[0] == "glibc"

SPY = """
import json, sys
import pixiu.host_memory as host_memory
real, seen = host_memory.tune_host_allocator, []
def spy():
    seen.append("torch" in sys.modules)
    real()
host_memory.tune_host_allocator = spy
import pixiu.cli, os
print(json.dumps({"torch_loaded_before": seen, "thp": os.environ.get("THP_MEM_ALLOC_ENABLE")}))
"""


class FakeLibc:
    """Records `mallopt` calls instead of changing the test process's allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return 1


def run_spy(env: dict[str, str]) -> dict:
    """Import the CLI in a fresh interpreter and report what the allocator tuning saw."""
    done = subprocess.run([sys.executable, "-c", SPY], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_tunes_the_allocator_once_before_torch_is_imported() -> None:
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    assert run_spy(env) == {"torch_loaded_before": [False], "thp": "1"}


def test_a_users_torch_setting_is_kept() -> None:
    assert run_spy({**os.environ, "THP_MEM_ALLOC_ENABLE": "0"})["thp"] == "0"


def test_both_glibc_thresholds_are_set(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(host_memory, "_glibc", lambda: libc)
    for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "THP_MEM_ALLOC_ENABLE"):
        monkeypatch.delenv(name, raising=False)
    tune_host_allocator()
    assert libc.calls == [(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES), (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)]
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"


def test_a_users_glibc_thresholds_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    libc = FakeLibc()
    monkeypatch.setattr(host_memory, "_glibc", lambda: libc)
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    tune_host_allocator()
    assert libc.calls == [(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)]
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    libc.calls.clear()
    tune_host_allocator()
    assert libc.calls == []


def test_nothing_is_called_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_memory.sys, "platform", "darwin")
    assert host_memory._glibc() is None


@pytest.mark.skipif(not ON_GLIBC, reason="glibc only")
def test_glibc_accepts_both_values() -> None:
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    assert libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
