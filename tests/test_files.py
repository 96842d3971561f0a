"""The one atomic writer: a file or folder is the old one or the new one, never a part of either, and nothing
temporary is left behind."""

import os
import stat

import pytest

from paddlenlp_ext.files import atomic_file, atomic_folder


def _siblings(path):
    return sorted(os.listdir(os.path.dirname(path)))


def test_atomic_file_replaces_only_on_success(tmp_path):
    path = tmp_path / "out" / "result.json"
    with atomic_file(path) as f:
        f.write("first")
    assert path.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_file(path) as f:
        f.write("half of the second")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "first" and _siblings(path) == ["result.json"]
    with atomic_file(path, "wb") as f:
        f.write(b"second")
    assert path.read_bytes() == b"second" and _siblings(path) == ["result.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask  # as readable as a plain open() makes it


def test_atomic_folder_replaces_only_on_success(tmp_path):
    path = tmp_path / "best"
    with atomic_folder(path) as tmp:
        assert not path.exists()  # nothing is published before the block ends
        (tmp_path / os.path.basename(tmp) / "model.txt").write_text("first")
    assert (path / "model.txt").read_text() == "first"
    with pytest.raises(KeyboardInterrupt), atomic_folder(path) as tmp:
        with open(os.path.join(tmp, "model.txt"), "w") as f:
            f.write("half")
        raise KeyboardInterrupt
    assert (path / "model.txt").read_text() == "first" and os.listdir(tmp_path) == ["best"]
    with atomic_folder(path) as tmp:
        with open(os.path.join(tmp, "other.txt"), "w") as f:
            f.write("second")
    assert os.listdir(path) == ["other.txt"] and os.listdir(tmp_path) == ["best"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o777 & ~umask
