"""The one way this project writes a file or a folder: in a temporary sibling, flushed to disk, then renamed into
place. A reader (or a crash at any point) sees the old content or the new, never half of either."""

import contextlib
import os
import shutil
import tempfile


def _fsync_tree(path: str):
    """fsync every file under path, then the folders themselves, so that the rename never publishes data the disk
    does not hold yet."""
    for root, _, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(root)


def _fsync_dir(path: str):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path, mode: str = "w", **open_kwargs):
    """`with atomic_file(path) as f: f.write(...)`: path is replaced by what was written when the block ends without
    an error; on an error it is left as it was and the temporary file is removed."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0o600: make it as readable as a plain open() would
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_folder(path):
    """`with atomic_folder(path) as tmp: <write files into tmp>`: tmp then replaces path (an earlier path is removed
    only after the new one is in place). On an error, path is left as it was and tmp is removed."""
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.tmp-", dir=parent)
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0o700: make it as readable as a plain makedirs would
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.old-", dir=parent)
            os.rename(path, os.path.join(old, "previous"))
        os.rename(tmp, path)
        _fsync_dir(parent)
        if old:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
