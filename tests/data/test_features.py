import os
import shutil

import numpy as np
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import DataFormatError, MissingFeatureError, RegionFeatures, coco_image_name, nlvr2_image_names
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset


def test_feature_paths_follow_the_released_layouts():
    assert coco_image_name("val2014", 42) == "COCO_val2014_000000000042"
    assert nlvr2_image_names("dev-850-0-0") == ("dev-850-0-img0.png", "dev-850-0-img1.png")
    assert RegionFeatures("/d", "coco_detectron_fix_100").path("COCO_test2015_000000000001") == (
        "/d/data/detectron_fix_100/fc6/vqa/test2015/COCO_test2015_000000000001.npy"
    )
    assert RegionFeatures("/d", "coco_detectron_fix_144").path("COCO_val2014_000000000042") == (
        "/d/data/detectron_fix_144/nlvr2/val/feature_1024dim/COCO_val2014_000000000042.npy"
    )
    assert RegionFeatures("/d", "nlvr2_detectron_fix_144").path("test1-3-1-img1.png") == (
        "/d/data/detectron_fix_144/test1/feature_1024dim/test1-3-1-img1.png.npy"
    )


def test_load_reads_the_file_and_keeps_at_most_max_boxes(sample_dir, vqa_features):
    name = coco_image_name("train2014", 1)
    stored = np.load(vqa_features.path(name))
    loaded = vqa_features.load(name)
    assert loaded.dtype == np.float32 and loaded.shape == (6, 2048)
    np.testing.assert_array_equal(loaded, stored)
    assert not loaded.flags.writeable  # a view of the mapped file: the collator copies it into the batch
    truncated = RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100", max_boxes=4).load(name)
    np.testing.assert_array_equal(truncated, stored[:4])


@pytest.fixture
def vqa_copy(sample_dir, tmp_path):
    """A private copy of the VQA minival data whose feature files tests may break."""
    root = tmp_path / "coco"
    shutil.copytree(sample_dir / "coco" / "imdb", root / "imdb")
    for split in ("val2014",):
        source = sample_dir / "coco" / "data" / "detectron_fix_100" / "fc6" / "vqa" / split
        shutil.copytree(source, root / "data" / "detectron_fix_100" / "fc6" / "vqa" / split)
    records = load_dataset("vqa2", splits="minival", data_dir=str(root))
    return root, records, RegionFeatures(str(root), "coco_detectron_fix_100")


def test_missing_feature_file_names_file_and_question(vqa_copy, tokenizer):
    root, records, features = vqa_copy
    os.remove(features.path(records[0]["image_name"]))
    dataset = VqaDataset(records, features, tokenizer)
    with pytest.raises(MissingFeatureError, match=rf"{records[0]['image_name']}\.npy \(example question_id "):
        dataset.check_features()
    with pytest.raises(FileNotFoundError, match=f"question_id {records[0]['question_id']}"):
        dataset[0]


def test_skip_missing_drops_and_counts_the_examples(vqa_copy, tokenizer):
    root, records, features = vqa_copy
    missing = records[0]["image_name"]
    os.remove(features.path(missing))
    dataset = VqaDataset(records, features, tokenizer, skip_missing=True)
    expected = sum(record["image_name"] == missing for record in records)
    assert expected > 0 and dataset.num_skipped == expected
    assert len(dataset) == len(records) - expected
    assert missing not in {record["image_name"] for record in dataset.records}


def test_feature_dim_other_than_the_models_is_an_error(vqa_copy, tokenizer):
    root, records, _ = vqa_copy
    features = RegionFeatures(str(root), "coco_detectron_fix_100", dim=1024)
    dataset = VqaDataset(records, features, tokenizer)
    with pytest.raises(DataFormatError, match=rf"{records[0]['image_name']}\.npy .*shape \(6, 2048\).*1024"):
        dataset.check_features()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_feature_file_names_file_and_question(vqa_copy, tokenizer, damage):
    root, records, features = vqa_copy
    path = features.path(records[0]["image_name"])
    content = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write({"truncate": content[: len(content) // 2], "garbage": b"not a numpy file" * 20, "empty": b""}[damage])
    with pytest.raises(DataFormatError, match=rf"corrupt or truncated feature file .*{records[0]['image_name']}"):
        VqaDataset(records, features, tokenizer).check_features()
