"""The NLVR2 predictions CSV and its metrics json are written as one prediction."""

import json
import os

import pytest

from paddlenlp_ext.tasks.nlvr2 import task as nlvr2


def test_predictions_and_metrics_are_written_together_csv_last(tmp_path, monkeypatch):
    renamed = []
    replace = os.replace

    def record(src, dst):
        renamed.append(os.path.basename(dst))
        replace(src, dst)

    monkeypatch.setattr(os, "replace", record)
    path = nlvr2.write_predictions(str(tmp_path), "dev", ["dev-1-0-0", "dev-1-0-1"], [1, 0], {"accuracy": 0.5})
    assert renamed == ["metrics_dev.json", "predictions_dev.csv"]
    assert open(path).read().splitlines() == ["dev-1-0-0,True", "dev-1-0-1,False"]
    assert json.loads((tmp_path / "metrics_dev.json").read_text()) == {"accuracy": 0.5}


def test_a_failed_write_replaces_neither_file(tmp_path):
    nlvr2.write_predictions(str(tmp_path), "dev", ["dev-1-0-0"], [1], {"accuracy": 1.0})
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError, match="not a label"):
        nlvr2.write_predictions(str(tmp_path), "dev", ["dev-1-0-0"], ["not a label"], {"accuracy": 0.0})
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before
