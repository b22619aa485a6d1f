"""Files written atomically get the permissions a plain open() would give them."""

import os
import stat

from pixiu.files import atomic_write_text


def test_an_atomic_write_honours_the_umask_like_open(tmp_path):
    atomic_write_text(tmp_path / "atomic.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(tmp_path / "plain.txt").st_mode)
    assert mode & stat.S_IRGRP  # not mkstemp's 0600
