"""``import paddlenlp_ext`` registers the three builders: load_dataset finds each by name, also with data_files."""

import json
import sys

import numpy as np
import paddlenlp.datasets
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import DataFormatError
from paddlenlp_ext.tasks.nlvr2 import builder as nlvr2_builder
from paddlenlp_ext.tasks.pretrain import builder as coco_captions_builder
from paddlenlp_ext.tasks.vqa import builder as vqa2_builder


def test_import_registers_the_builders():
    assert sys.modules["paddlenlp.datasets.vqa2"] is vqa2_builder
    assert paddlenlp.datasets.nlvr2 is nlvr2_builder
    assert paddlenlp.datasets.coco_captions is coco_captions_builder


def test_explicit_data_files_override_the_folder(sample_dir):
    path = str(sample_dir / "coco" / "imdb" / "imdb_minival2014.npy")
    records = load_dataset("vqa2", data_files=[path], splits=["minival"])
    assert [r["question_id"] for r in records] == [e["question_id"] for e in np.load(path, allow_pickle=True)[1:]]
    nlvr2_path = str(sample_dir / "nlvr2" / "dev.json")
    assert len(load_dataset("nlvr2", data_files=nlvr2_path)) == sum(1 for _ in open(nlvr2_path))


def test_empty_splits_are_errors_naming_the_file(tmp_path):
    header_only = np.empty(1, dtype=object)
    header_only[0] = {"dataset_name": "vqa", "has_answer": True}
    np.save(tmp_path / "imdb_empty.npy", header_only, allow_pickle=True)
    with pytest.raises(DataFormatError, match="imdb_empty.npy holds no questions"):
        load_dataset("vqa2", data_files=str(tmp_path / "imdb_empty.npy"), splits="val")
    (tmp_path / "empty.json").write_text("\n")
    with pytest.raises(DataFormatError, match="empty.json holds no examples"):
        load_dataset("nlvr2", data_files=str(tmp_path / "empty.json"), splits="dev")
    (tmp_path / "captions.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(DataFormatError, match="captions.json holds no captions"):
        load_dataset("coco_captions", data_files=str(tmp_path / "captions.json"), splits="val")
