"""Writable places are checked before any work: a run that cannot save or register says so up front."""

import os

import pytest
from click.testing import CliRunner

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
