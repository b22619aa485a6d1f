"""Stopping a training run the way a kill would, right after it saved a checkpoint, so a test can resume it."""

from __future__ import annotations

import pytest

import pixiu.recipes.lora_sft as recipe


def interrupt_after_saving(
    monkeypatch: pytest.MonkeyPatch, step: int, error: type[BaseException] = KeyboardInterrupt
) -> None:
    """Make the SFT recipe raise `error` (a Ctrl-C by default) right after it saved checkpoint `step`."""
    save = recipe.save_checkpoint

    def save_then_stop(run_dir, saved_step, *args, **kwargs):
        path = save(run_dir, saved_step, *args, **kwargs)
        if saved_step == step:
            raise error
        return path

    monkeypatch.setattr(recipe, "save_checkpoint", save_then_stop)
