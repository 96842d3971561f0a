"""EvalAI result files: validation against the split and atomic writing."""

import json
import os

import numpy as np
import pytest

from paddlenlp_ext.tasks.vqa import results as results_module
from paddlenlp_ext.tasks.vqa import task as vqa_task
from paddlenlp_ext.tasks.vqa.answers import AnswerVocab
from paddlenlp_ext.tasks.vqa.results import (
    ResultsError,
    make_results,
    parse_results,
    validate_results,
    write_results,
    write_topk,
)

SPLIT = [101, 102, 103]


def good_results():
    return [
        {"question_id": 103, "answer": "yes"},
        {"question_id": 101, "answer": "2"},
        {"question_id": 102, "answer": "red"},
    ]


def test_validate_casts_numpy_ids_to_int_and_keeps_order():
    results = make_results(np.array([103, 101, 102], dtype=np.int64), ["yes", "2", "red"])
    validated = validate_results(results, np.array(SPLIT))
    assert validated == good_results()
    assert all(type(entry["question_id"]) is int for entry in validated)


@pytest.mark.parametrize(
    "results, message",
    [
        (good_results()[:2], "question 102 of the split is not answered"),
        (good_results() + [{"question_id": 101, "answer": "3"}], "question 101 is answered more than once"),
        (good_results() + [{"question_id": 999, "answer": "3"}], "question 999 is answered but is not in the split"),
        ([{"question_id": 103, "answer": "<unk>"}] + good_results()[1:], "question 103: answer is <unk>"),
        ([{"question_id": 103, "answer": " "}] + good_results()[1:], "question 103: empty answer"),
        ([{"question_id": 103, "answer": 2}] + good_results()[1:], "question 103: answer 2 is not a str"),
        (
            [{"question_id": "103", "answer": "yes"}] + good_results()[1:],
            "result entry 0: question_id '103' is not an int",
        ),
        (
            [{"question_id": 103.0, "answer": "yes"}] + good_results()[1:],
            "result entry 0: question_id 103.0 is not an int",
        ),
        (
            [{"question_id": True, "answer": "yes"}] + good_results()[1:],
            "result entry 0: question_id True is not an int",
        ),
        ([{"question_id": 103}] + good_results()[1:], "result entry 0 is not an object with question_id and answer"),
        ({"103": "yes"}, "results must be a list"),
    ],
)
def test_validate_rejects(results, message):
    with pytest.raises(ResultsError, match=message):
        validate_results(results, SPLIT)


def test_parse_results_allows_any_str_answer():
    # The metric itself scores "<unk>" or "" as a miss; only submissions must not contain them.
    assert parse_results([{"question_id": 1, "answer": "<unk>"}, {"question_id": 2, "answer": ""}]) == {
        1: "<unk>",
        2: "",
    }


def test_make_results_needs_one_answer_per_id():
    with pytest.raises(ResultsError, match="3 question ids but 2 answers"):
        make_results(SPLIT, ["yes", "no"])


def test_write_results_round_trip(tmp_path):
    path = tmp_path / "result.json"
    write_results(path, make_results(np.array([103, 101, 102]), ["yes", "2", "red"]), SPLIT)
    assert json.loads(path.read_text()) == good_results()
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_results_invalid_writes_nothing_and_keeps_old_file(tmp_path):
    path = tmp_path / "result.json"
    with pytest.raises(ResultsError, match="question 102"):
        write_results(path, good_results()[:2], SPLIT)
    assert list(tmp_path.iterdir()) == []

    path.write_text("old")
    with pytest.raises(ResultsError, match="<unk>"):
        write_results(path, [{"question_id": 103, "answer": "<unk>"}] + good_results()[1:], SPLIT)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_failure_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    def dump_then_fail(obj, f):
        f.write('[{"question_id": 103, ')
        raise OSError("disk full")

    monkeypatch.setattr(results_module.json, "dump", dump_then_fail)
    path = tmp_path / "result.json"
    with pytest.raises(OSError, match="disk full"):
        write_results(path, good_results(), SPLIT)
    assert list(tmp_path.iterdir()) == []


def test_write_topk_round_trip(tmp_path):
    path = tmp_path / "topk.json"
    probs = np.array([[0.75, 0.25], [0.5, 0.125]], dtype=np.float32)
    write_topk(path, np.array([7, 8]), [["yes", "no"], ["2", "3"]], probs)
    assert json.loads(path.read_text()) == [
        {"question_id": 7, "answers": ["yes", "no"], "probs": [0.75, 0.25]},
        {"question_id": 8, "answers": ["2", "3"], "probs": [0.5, 0.125]},
    ]


@pytest.mark.parametrize(
    "question_ids, answers, probs, message",
    [
        ([7, 8], [["yes", "no"]], [[0.75, 0.25]], "2 question ids, 1 answer rows and 1 prob rows"),
        ([7], [["yes", "no"]], [[0.75]], "question 7: 2 answers but 1 probs"),
        ([7, 7], [["yes"], ["no"]], [[0.5], [0.5]], "question 7 appears more than once"),
        ([7.5], [["yes"]], [[1.0]], "top-k row 0: question_id 7.5 is not an int"),
    ],
)
def test_write_topk_rejects(tmp_path, question_ids, answers, probs, message):
    path = tmp_path / "topk.json"
    with pytest.raises(ResultsError, match=message):
        write_topk(path, question_ids, answers, probs)
    assert list(tmp_path.iterdir()) == []


VOCAB = AnswerVocab(["<unk>", "yes", "no", "2", "red"])
INDICES = np.array([[1, 2, 3], [3, 4, 1], [4, 1, 2]])  # top-3 answers of SPLIT's questions
PROBS = np.array([[0.5, 0.25, 0.125]] * 3, dtype=np.float32)


def predict_into(folder, top_k):
    return vqa_task.write_predictions(str(folder), SPLIT, INDICES[:, :top_k], PROBS[:, :top_k], VOCAB, top_k)


def test_second_prediction_without_top_k_removes_the_first_runs_top_k(tmp_path):
    predict_into(tmp_path, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "result_topk.json"]
    assert [entry["answers"] for entry in json.loads((tmp_path / "result_topk.json").read_text())][0] == [
        "yes",
        "no",
        "2",
    ]
    path = predict_into(tmp_path, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert json.loads(open(path).read()) == [
        {"question_id": q, "answer": VOCAB[i]} for q, i in zip(SPLIT, INDICES[:, 0])
    ]


def test_invalid_top_k_replaces_neither_file(tmp_path):
    predict_into(tmp_path, 3)
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(ResultsError, match="question 101: 3 answers but 2 probs"):
        vqa_task.write_predictions(str(tmp_path), SPLIT, INDICES, PROBS[:, :2], VOCAB, 3)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_result_json_is_renamed_into_place_after_result_topk_json(tmp_path, monkeypatch):
    renamed = []
    replace = os.replace
    monkeypatch.setattr(
        results_module.os, "replace", lambda src, dst: (renamed.append(os.path.basename(dst)), replace(src, dst))
    )
    predict_into(tmp_path, 3)
    assert renamed == ["result_topk.json", "result.json"]
