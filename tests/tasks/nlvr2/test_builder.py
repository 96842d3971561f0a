import json

import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import DataFormatError


def test_nlvr2_labels_are_mapped_explicitly(sample_dir):
    datasets = load_dataset("nlvr2", splits=["train", "dev", "test1"], data_dir=str(sample_dir / "nlvr2"))
    for split in ("train", "dev", "test1"):
        lines = [json.loads(line) for line in open(sample_dir / "nlvr2" / f"{split}.json")]
        records = datasets[split]
        assert [r["identifier"] for r in records] == [line["identifier"] for line in lines]
        assert [r["label"] for r in records] == [{"True": 1, "False": 0}[line["label"]] for line in lines]
        assert {r["label"] for r in records} == {0, 1}


def test_nlvr2_bad_records_name_file_and_identifier(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"identifier": "dev-1-0-0", "sentence": "a cube .", "label": "yes"}) + "\n")
    with pytest.raises(DataFormatError, match=r"dev\.json: identifier dev-1-0-0 has label 'yes'"):
        load_dataset("nlvr2", data_files=str(path), splits="dev")
    path.write_text(json.dumps({"identifier": "dev-1-0-1", "label": "True"}) + "\n")
    with pytest.raises(DataFormatError, match=r"dev\.json: identifier dev-1-0-1 lacks \['sentence'\]"):
        load_dataset("nlvr2", data_files=str(path), splits="dev")
