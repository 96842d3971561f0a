import pytest

from paddlenlp_ext.datasets.sample import SampleConfig, write_sample

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
