"""Feature files are validated where they are read, missing ones are found before training, and a data error inside
a DataLoader (any number of workers) ends an entry point with one line naming the file and the example."""

import os
import re
import shutil
import subprocess
import sys
import threading

import numpy as np
import paddle
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import DataFormatError, MissingFeatureError, RegionFeatures, VisualBertCollator, model_inputs
from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset
from paddlenlp_ext.transformers import VisualBertConfig, VisualBertForQuestionAnswering

FEATURES = ("data", "detectron_fix_100", "fc6", "vqa")


@pytest.fixture
def coco_copy(sample_dir, tmp_path):
    """A private copy of the sample's VQA data (train split) whose feature files tests may break."""
    root = tmp_path / "coco"
    shutil.copytree(sample_dir / "coco" / "imdb", root / "imdb")
    shutil.copytree(sample_dir / "coco" / "extras", root / "extras")
    for split in ("train2014", "val2014"):
        shutil.copytree(sample_dir / "coco" / os.path.join(*FEATURES) / split, root / os.path.join(*FEATURES) / split)
    return root


@pytest.fixture
def train(coco_copy, tokenizer):
    """(records, features, dataset) of the copy's train split."""
    records = load_dataset("vqa2", splits="train", data_dir=str(coco_copy))
    features = RegionFeatures(str(coco_copy), "coco_detectron_fix_100")
    return records, features, VqaDataset(records, features, tokenizer)


def corrupt_later_file(records, features) -> tuple[str, set]:
    """Overwrite the features of a later (not the first) image with garbage; returns (path, the questions on it)."""
    name = next(r["image_name"] for r in records[len(records) // 2 :] if r["image_name"] != records[0]["image_name"])
    path = features.path(name)
    with open(path, "wb") as f:
        f.write(b"garbage, not a numpy file")
    return path, {record["question_id"] for record in records if record["image_name"] == name}


def named_question(message: str) -> int:
    return int(re.search(r"\(example question_id (\d+)\)", message).group(1))


BAD_ARRAYS = {
    "int": (np.ones((6, 2048), dtype=np.int64), "holds int64 values, expected floats"),
    "1-d": (np.ones(2048, dtype=np.float32), r"has shape \(2048,\), expected \[num_boxes, 2048\]"),
    "3-d": (np.ones((1, 6, 2048), dtype=np.float32), r"has shape \(1, 6, 2048\)"),
    "feature size": (np.ones((6, 1024), dtype=np.float32), r"has shape \(6, 1024\), expected \[num_boxes, 2048\]"),
    "zero boxes": (np.ones((0, 2048), dtype=np.float32), "has zero boxes"),
    "nan": (np.where(np.eye(6, 2048) > 0, np.nan, 1).astype(np.float32), "holds NaN or infinite values"),
    "inf": (np.full((6, 2048), np.inf, dtype=np.float16), "holds NaN or infinite values"),
    "beyond float32": (np.full((6, 2048), 1e300), "holds NaN or infinite values"),
}


@pytest.mark.parametrize("kind", BAD_ARRAYS)
def test_bad_feature_array_names_file_example_and_problem(train, kind):
    records, features, dataset = train
    array, problem = BAD_ARRAYS[kind]
    np.save(features.path(records[0]["image_name"]), array)
    where = re.escape(f"{features.path(records[0]['image_name'])} (example question_id {records[0]['question_id']})")
    with pytest.raises(DataFormatError, match=f"^feature file {where} {problem}"):
        dataset[0]


@pytest.mark.parametrize("damage", ["garbage", "npz"])
def test_unreadable_feature_file_names_file_and_example(train, damage):
    records, features, dataset = train
    path = features.path(records[0]["image_name"])
    with open(path, "wb") as f:
        if damage == "npz":
            np.savez(f, np.ones((6, 2048), dtype=np.float32))
        else:
            f.write(b"\x93NUMPY garbage")
    where = re.escape(f"{path} (example question_id {records[0]['question_id']})")
    expected = (
        f"^feature file {where} is an .npz archive"
        if damage == "npz"
        else f"^corrupt or truncated feature file {where}: "
    )
    with pytest.raises(DataFormatError, match=expected):
        dataset[0]


@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_float16_and_float64_files_are_cast_to_float32(train, dtype):
    records, features, _ = train
    stored = np.random.default_rng(0).random((6, 2048)).astype(dtype)
    np.save(features.path(records[0]["image_name"]), stored)
    loaded = features.load(records[0]["image_name"])
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, stored.astype(np.float32))


def test_missing_files_are_listed_before_training(train, tokenizer):
    records, features, dataset = train
    names = list(dict.fromkeys(record["image_name"] for record in records))
    for name in names[3:8]:  # not the first: check_features used to read only that one
        os.remove(features.path(name))
    first = next(record for record in records if record["image_name"] == names[3])
    listed = f"{names[3]}.npy (example question_id {first['question_id']}), {names[4]}.npy, {names[5]}.npy, ..."
    message = f"5 of {len(names)} feature files missing under {features.feature_dir}: {listed}"
    with pytest.raises(MissingFeatureError, match=f"^{re.escape(message)}$"):
        dataset.check_features()


@pytest.mark.parametrize("num_workers", [0, 1, 2])
def test_loader_raises_the_data_error_in_the_main_process(train, tokenizer, num_workers):
    records, features, dataset = train
    path, question_ids = corrupt_later_file(records, features)
    loader = paddle.io.DataLoader(
        dataset, batch_size=8, num_workers=num_workers, collate_fn=VisualBertCollator(tokenizer.pad_token_id)
    )
    with pytest.raises(DataFormatError, match=f"^corrupt or truncated feature file {re.escape(path)} ") as raised:
        for batch in loader:
            model_inputs(batch)
    question_id = named_question(str(raised.value))
    assert question_id in question_ids
    with pytest.raises(DataFormatError) as direct:  # the error indexing gives
        dataset[[r["question_id"] for r in records].index(question_id)]
    assert str(direct.value) == str(raised.value)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_bug_while_building_an_example_is_raised_with_its_traceback(train, tokenizer, num_workers):
    records, features, _ = train

    class Broken(VqaDataset):
        def example(self, index):
            return {}["missing key"]

    loader = paddle.io.DataLoader(
        Broken(records, features, tokenizer), batch_size=8, num_workers=num_workers,
        collate_fn=VisualBertCollator(tokenizer.pad_token_id),
    )  # fmt: skip
    with pytest.raises(RuntimeError, match=r"(?s)building example \d+ failed:.*KeyError: 'missing key'"):
        model_inputs(next(iter(loader)))


def test_indexing_outside_the_loader_raises_in_any_thread(train):
    records, features, dataset = train
    path, _ = corrupt_later_file(records, features)
    index = [features.path(r["image_name"]) for r in records].index(path)
    raised = []

    def index_it():
        try:
            dataset[index]
        except DataFormatError as error:
            raised.append(error)

    thread = threading.Thread(target=index_it)
    thread.start()
    thread.join()
    assert len(raised) == 1 and path in str(raised[0])


def entry_point(*argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )


def assert_one_error_line(result, path, question_ids):
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(errors) == 1 and path in errors[0] and named_question(errors[0]) in question_ids, errors
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


@pytest.fixture
def corrupt_train(coco_copy, train):
    records, features, _ = train
    return (coco_copy, *corrupt_later_file(records, features))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_training_entry_point_stops_on_a_corrupt_train_file(corrupt_train, sample_dir, tmp_path, num_workers):
    root, path, question_ids = corrupt_train
    config = tmp_path / "config.json"
    config.write_text(
        '{"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64, '
        '"max_position_embeddings": 64}'
    )
    result = entry_point(
        "VQA2/run_vqa2.py", "--input_dir", str(root), "--tokenizer_name_or_path", str(sample_dir / "vocab.txt"),
        "--config", str(config), "--output_dir", str(tmp_path / "out"), "--train_split", "train", "--dev_split", "",
        "--batch_size", "8", "--max_seq_length", "32", "--max_steps", "40", "--num_workers", str(num_workers),
    )  # fmt: skip
    assert_one_error_line(result, path, question_ids)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_prediction_entry_point_stops_on_a_corrupt_file(corrupt_train, tokenizer, answers, tmp_path, num_workers):
    root, path, question_ids = corrupt_train
    config = VisualBertConfig(
        vocab_size=len(tokenizer.vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, visual_embedding_dim=2048, num_labels=len(answers),
    )  # fmt: skip
    model_dir = str(tmp_path / "model")
    VisualBertForQuestionAnswering(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    result = entry_point(
        "VQA2/run_predict.py", "--input_dir", str(root), "--model_name_or_path", model_dir, "--split", "train",
        "--output_dir", str(tmp_path / "out"), "--max_seq_length", "32", "--num_workers", str(num_workers),
    )  # fmt: skip
    assert_one_error_line(result, path, question_ids)
