"""Where a builder finds its files: under the caller's ``data_dir``, else under PaddleNLP's DATA_HOME (downloaded)."""

import os

from paddle.utils.download import get_path_from_url
from paddlenlp.utils.env import DATA_HOME


def locate(relative_path: str, data_dir: str | None, default_folder: str, url: str, md5: str | None = None) -> str:
    """Path of ``relative_path`` under ``data_dir``; without one, under ``DATA_HOME/default_folder``.

    A file missing from a caller's ``data_dir`` is an error (offline use never downloads); a file missing from
    DATA_HOME is downloaded from ``url`` (archives are unpacked there).
    """
    if data_dir is not None:
        path = os.path.join(data_dir, relative_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found in data_dir {data_dir!r}")
        return path
    root = os.path.join(DATA_HOME, default_folder)
    path = os.path.join(root, relative_path)
    if not os.path.isfile(path):
        get_path_from_url(url, root, md5)
    return path
