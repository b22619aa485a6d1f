"""Writable places are checked before any work: a run that cannot save or register says so up front."""

import errno
import json
import os
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import pixiu.models
import pixiu.paths
import pixiu.training
from pixiu.cli import cli
from pixiu.errors import PixiuError
from pixiu.paths import ensure_writable


def train(*args):
    return CliRunner().invoke(cli, ["domain", "train", "toy", "--data", "toy.jsonl", *args], catch_exceptions=False)


def test_a_folder_to_be_created_under_a_writable_one_passes(tmp_path):
    ensure_writable(tmp_path / "a" / "b", "run folder", "pass --output DIR")
    assert not (tmp_path / "a").exists()  # checking creates nothing


def test_a_path_through_a_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "f").write_text("x")
    expected = rf"run folder {tmp_path}/f/run cannot be created: {tmp_path}/f is a file.*--output"
    with pytest.raises(PixiuError, match=expected):
        ensure_writable(tmp_path / "f" / "run", "run folder", "pass --output DIR")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    with pytest.raises(PixiuError, match=r"is not writable: cannot create a file in .*ro \(Permission denied\)"):
        ensure_writable(folder / "run", "run folder", "pass --output DIR")


def test_train_refuses_an_output_it_cannot_write_before_training(toy_plugin, captured_run, tmp_path):
    (tmp_path / "f").write_text("x")
    result = train("--output", str(tmp_path / "f" / "run"))
    assert result.exit_code != 0
    assert not captured_run
    assert "Error: run folder" in result.output
    assert "is a file, not a folder; pass --output DIR" in result.output


def test_train_refuses_a_pixiu_home_that_is_a_file_before_training(toy_plugin, captured_run, tmp_path, monkeypatch):
    (tmp_path / "home").write_text("x")
    monkeypatch.setenv("PIXIU_HOME", str(tmp_path / "home"))
    result = train("--output", str(tmp_path / "run"))
    assert result.exit_code != 0
    assert not captured_run
    assert f"Error: PIXIU_HOME {tmp_path}/home cannot be created" in result.output
    assert "point PIXIU_HOME" in result.output


@pytest.fixture
def read_only(monkeypatch):
    """`read_only(folder)`: the write probe of `ensure_writable` is refused in `folder`, as for a non-root user.

    Tests run as root, which writes into chmod-ed read-only folders, so the refusal is simulated at the probe.
    """
    refused: list[Path] = []

    def probe(*args, dir=None, **kwargs):
        if dir is not None and Path(dir) in refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return tempfile.TemporaryFile(*args, dir=dir, **kwargs)

    monkeypatch.setattr(pixiu.paths, "tempfile", SimpleNamespace(TemporaryFile=probe))
    return refused.append


@pytest.fixture
def no_base_loading(monkeypatch):
    """Fail the test if training gets as far as loading the base model."""

    def load_base(*args, **kwargs):
        pytest.fail("the base model was loaded before the unwritable folder was refused")

    monkeypatch.setattr(pixiu.models, "load_base", load_base)
    monkeypatch.setattr(pixiu.training, "load_base", load_base)


@pytest.mark.parametrize("where", ["output", "PIXIU_HOME"])
def test_train_refuses_a_read_only_folder_before_loading_the_base(
    toy_plugin, read_only, no_base_loading, tmp_path, monkeypatch, where
):
    data = tmp_path / "toy.jsonl"
    data.write_text("".join(json.dumps({"q": f"q{i}", "a": f"a{i}"}) + "\n" for i in range(8)), encoding="utf-8")
    folder = tmp_path / "locked"
    folder.mkdir()
    read_only(folder)
    output = folder / "run" if where == "output" else tmp_path / "run"
    if where == "PIXIU_HOME":
        monkeypatch.setenv("PIXIU_HOME", str(folder))
    args = ["domain", "train", "toy", "--data", str(data), "--base", "tiny", "--device", "cpu", "--output", str(output)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1
    what = "run folder" if where == "output" else "PIXIU_HOME"
    target = output if where == "output" else folder
    message = f"Error: {what} {target} is not writable: cannot create a file in {folder} (Permission denied)"
    assert message in result.output and "Traceback" not in result.output
    assert not output.exists()  # refused before the run folder was made
