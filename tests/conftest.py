import numpy as np
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext import cpu_backend
from paddlenlp_ext.data import RegionFeatures, load_tokenizer
from paddlenlp_ext.data.sample import SampleConfig, write_sample
from paddlenlp_ext.tasks.pretrain.dataset import CocoCaptionsDataset
from paddlenlp_ext.tasks.vqa.answers import load_answer_vocab
from paddlenlp_ext.transformers.visualbert.configuration import VisualBertConfig

# Small enough to write in well under a second; the defaults are sized for training instead.
TEST_SAMPLE = SampleConfig(
    train_images=30,
    val_images=12,
    minival_images=4,
    test_images=6,
    questions_per_image=4,
    vqa_boxes=6,
    nlvr2_boxes=8,
    nlvr2_train_sets=10,
    nlvr2_eval_sets=4,
)


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    """A sample of VQA2 + COCO (``coco/``) and NLVR2 (``nlvr2/``) in the real layouts, with ``vocab.txt``."""
    out = tmp_path_factory.mktemp("sample")
    write_sample(str(out), TEST_SAMPLE)
    return out


# The sample's tokenizer, answers, features and records, shared by tests/data and tests/tasks.


@pytest.fixture(scope="session")
def tokenizer(sample_dir):
    return load_tokenizer(str(sample_dir / "vocab.txt"))


@pytest.fixture(scope="session")
def answers(sample_dir):
    return load_answer_vocab(str(sample_dir / "coco" / "extras" / "vocabs" / "answers_vqa.txt"))


@pytest.fixture(scope="session")
def vqa_features(sample_dir):
    return RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100")


@pytest.fixture(scope="session")
def nlvr2_features(sample_dir):
    return RegionFeatures(str(sample_dir / "nlvr2"), "nlvr2_detectron_fix_144")


@pytest.fixture(scope="session")
def vqa_records(sample_dir):
    return load_dataset("vqa2", splits="train", data_dir=str(sample_dir / "coco"))


@pytest.fixture(scope="session")
def nlvr2_records(sample_dir):
    return load_dataset("nlvr2", splits="train", data_dir=str(sample_dir / "nlvr2"))


@pytest.fixture(scope="session")
def coco_dataset(sample_dir, tokenizer):
    records = load_dataset("coco_captions", splits="train", data_dir=str(sample_dir / "coco"))
    return CocoCaptionsDataset(records, RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100"), tokenizer)


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
        import transformers

        return transformers.VisualBertConfig(architectures=[architecture], **{**TINY, **overrides})

    def paddle(**overrides):
        return VisualBertConfig(**{**TINY, **overrides})

    return hf, paddle


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["cpu_backend", "paddle_operators"])
def backend(request):
    """Run a test twice: with the CPU backend (the default on CPU) and without it (modeling.py's path, Paddle's own
    operators, which is what a GPU runs), switched through the backend's public control."""
    with cpu_backend.switched(request.param == "cpu_backend"):
        yield request.param
