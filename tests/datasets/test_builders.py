import json
import sys

import numpy as np
import paddlenlp.datasets
import pytest
from paddlenlp.datasets import load_dataset

import paddlenlp_ext
from paddlenlp_ext.datasets import DataFormatError

VQA_SPLITS = {
    "train": "train2014",
    "val": "val2014",
    "trainval": "trainval2014",
    "minival": "minival2014",
    "test": "test2015",
}


def imdb_entries(sample_dir, name):
    return np.load(sample_dir / "coco" / "imdb" / f"imdb_{name}.npy", allow_pickle=True)[1:]


def test_import_registers_the_builders():
    assert sys.modules["paddlenlp.datasets.vqa2"] is paddlenlp_ext.datasets.vqa2
    assert paddlenlp.datasets.nlvr2 is paddlenlp_ext.datasets.nlvr2
    assert paddlenlp.datasets.coco_captions is paddlenlp_ext.datasets.coco_captions


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


def test_explicit_data_files_override_the_folder(sample_dir):
    path = str(sample_dir / "coco" / "imdb" / "imdb_minival2014.npy")
    records = load_dataset("vqa2", data_files=[path], splits=["minival"])
    assert [r["question_id"] for r in records] == [e["question_id"] for e in imdb_entries(sample_dir, "minival2014")]
    nlvr2_path = str(sample_dir / "nlvr2" / "dev.json")
    assert len(load_dataset("nlvr2", data_files=nlvr2_path)) == sum(1 for _ in open(nlvr2_path))


def test_coco_captions_reads_every_caption(sample_dir):
    datasets = load_dataset("coco_captions", splits=["train", "val"], data_dir=str(sample_dir / "coco"))
    for split in ("train", "val"):
        content = json.loads((sample_dir / "coco" / "annotations" / f"captions_{split}2014.json").read_text())
        records = datasets[split]
        assert [r["caption"] for r in records] == [a["caption"] for a in content["annotations"]]
        first = records[0]
        assert first["image_name"] == f"COCO_{split}2014_{first['image_id']:012d}"


def test_nlvr2_labels_are_mapped_explicitly(sample_dir):
    datasets = load_dataset("nlvr2", splits=["train", "dev", "test1"], data_dir=str(sample_dir / "nlvr2"))
    for split in ("train", "dev", "test1"):
        lines = [json.loads(line) for line in open(sample_dir / "nlvr2" / f"{split}.json")]
        records = datasets[split]
        assert [r["identifier"] for r in records] == [line["identifier"] for line in lines]
        assert [r["label"] for r in records] == [{"True": 1, "False": 0}[line["label"]] for line in lines]
        assert {r["label"] for r in records} == {0, 1}


def test_a_file_missing_from_data_dir_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="imdb_val2014.npy"):
        load_dataset("vqa2", splits="val", data_dir=str(tmp_path))


def save_imdb(path, entries, header=None):
    array = np.empty(len(entries) + 1, dtype=object)
    array[0] = header or {"dataset_name": "vqa", "has_answer": True}
    array[1:] = entries
    np.save(path, array, allow_pickle=True)


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


def test_empty_splits_are_errors_naming_the_file(tmp_path):
    save_imdb(tmp_path / "imdb_empty.npy", [])
    with pytest.raises(DataFormatError, match="imdb_empty.npy holds no questions"):
        load_dataset("vqa2", data_files=str(tmp_path / "imdb_empty.npy"), splits="val")
    (tmp_path / "empty.json").write_text("\n")
    with pytest.raises(DataFormatError, match="empty.json holds no examples"):
        load_dataset("nlvr2", data_files=str(tmp_path / "empty.json"), splits="dev")
    (tmp_path / "captions.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DataFormatError, match="captions.json holds no captions"):
        load_dataset("coco_captions", data_files=str(tmp_path / "captions.json"), splits="val")


def test_nlvr2_bad_records_name_file_and_identifier(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"identifier": "dev-1-0-0", "sentence": "a cube .", "label": "yes"}) + "\n")
    with pytest.raises(DataFormatError, match=r"dev\.json: identifier dev-1-0-0 has label 'yes'"):
        load_dataset("nlvr2", data_files=str(path), splits="dev")
    path.write_text(json.dumps({"identifier": "dev-1-0-1", "label": "True"}) + "\n")
    with pytest.raises(DataFormatError, match=r"dev\.json: identifier dev-1-0-1 lacks \['sentence'\]"):
        load_dataset("nlvr2", data_files=str(path), splits="dev")
