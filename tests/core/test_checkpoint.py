"""Checkpoint writes: a failed write leaves no temp folder and keeps the checkpoints written before."""

import errno

import pytest
import torch

import pixiu.checkpoint
from pixiu.checkpoint import CHECKPOINTS, list_checkpoints, save_checkpoint
from pixiu.errors import PixiuError

ADAPTER = {"lora_A.weight": torch.ones(2, 2)}


def test_a_full_disk_is_a_clear_error_that_leaves_no_temp_folder(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, 1, ADAPTER, {}, keep=2)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pixiu.checkpoint, "save_file", full_disk)
    with pytest.raises(
        PixiuError, match=r"step 2 .*No space left on device.*--resume: the newest one kept is .*step-0000001"
    ):
        save_checkpoint(tmp_path, 2, ADAPTER, {}, keep=2)
    assert [p.name for p in (tmp_path / CHECKPOINTS).iterdir()] == ["step-0000001"]


def test_temp_folders_of_interrupted_writes_are_removed_by_the_next_save(tmp_path):
    stale = tmp_path / CHECKPOINTS / ".step-0000003.tmp-99999"
    stale.mkdir(parents=True)
    (stale / "adapter.safetensors").write_bytes(b"half")
    save_checkpoint(tmp_path, 4, ADAPTER, {}, keep=2)
    assert not stale.exists() and [p.name for p in list_checkpoints(tmp_path)] == ["step-0000004"]
