import numpy as np
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import DataFormatError

VQA_SPLITS = {
    "train": "train2014",
    "val": "val2014",
    "trainval": "trainval2014",
    "minival": "minival2014",
    "test": "test2015",
}


def imdb_entries(sample_dir, name):
    return np.load(sample_dir / "coco" / "imdb" / f"imdb_{name}.npy", allow_pickle=True)[1:]


def save_imdb(path, entries, header=None):
    array = np.empty(len(entries) + 1, dtype=object)
    array[0] = header or {"dataset_name": "vqa", "has_answer": True}
    array[1:] = entries
    np.save(path, array, allow_pickle=True)


def test_vqa2_reads_every_split_as_written(sample_dir):
    datasets = load_dataset("vqa2", splits=list(VQA_SPLITS), data_dir=str(sample_dir / "coco"))
    for split, name in VQA_SPLITS.items():
        records, entries = datasets[split], imdb_entries(sample_dir, name)
        assert len(records) == len(entries) > 0
        for record, entry in zip(records, entries):
            assert record["question_id"] == entry["question_id"]
            assert record["image_name"] == entry["image_name"]
            assert record["question_tokens"] == entry["question_tokens"]
            assert record["answers"] == entry.get("answers", [])
    assert all(len(record["answers"]) == 10 for record in datasets["train"])
    assert all(record["answers"] == [] for record in datasets["test"])
    assert len(datasets["trainval"]) == len(datasets["train"]) + len(datasets["val"])
    val_ids = {record["question_id"] for record in datasets["val"]}
    assert {record["question_id"] for record in datasets["minival"]} < val_ids


def test_vqa2_answer_vocab_path_is_reported(sample_dir):
    records = load_dataset("vqa2", splits="minival", data_dir=str(sample_dir / "coco"))
    assert records.vocab_info["filepath"] == str(sample_dir / "coco" / "extras" / "vocabs" / "answers_vqa.txt")


def test_a_file_missing_from_data_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="imdb_val2014.npy"):
        load_dataset("vqa2", splits="val", data_dir=str(tmp_path))


def test_question_without_required_field_names_file_and_question(sample_dir, tmp_path):
    entries = list(imdb_entries(sample_dir, "minival2014"))
    broken = dict(entries[2])
    del broken["question_tokens"]
    entries[2] = broken
    path = tmp_path / "imdb_bad.npy"
    save_imdb(path, entries)
    with pytest.raises(DataFormatError, match=rf"imdb_bad\.npy.*question_id {broken['question_id']}.*question_tokens"):
        load_dataset("vqa2", data_files=str(path), splits="minival")


def test_question_without_answers_outside_test_is_an_error(sample_dir, tmp_path):
    entry = {k: v for k, v in imdb_entries(sample_dir, "val2014")[0].items() if "answers" not in k}
    save_imdb(tmp_path / "imdb.npy", [entry])
    with pytest.raises(DataFormatError, match=f"question_id {entry['question_id']} has neither"):
        load_dataset("vqa2", data_files=str(tmp_path / "imdb.npy"), splits="val")


def test_imdb_without_header_is_an_error(sample_dir, tmp_path):
    entries = imdb_entries(sample_dir, "minival2014")
    np.save(tmp_path / "imdb.npy", entries, allow_pickle=True)
    with pytest.raises(DataFormatError, match=r"imdb\.npy: element 0 must be the header"):
        load_dataset("vqa2", data_files=str(tmp_path / "imdb.npy"), splits="minival")
