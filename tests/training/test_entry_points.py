"""Every entry point end to end on the sample data with a tiny model: outputs, formats, and bad inputs."""

import csv
import json
import os

import numpy as np
import pytest

from paddlenlp_ext.tasks.vqa import evaluation

COMMON = ["--num_workers", "0", "--logging_steps", "2", "--seed", "1"]


def vqa_args(sample_dir, out, config):
    coco = os.path.join(sample_dir, "coco")
    return [
        "--input_dir", coco, "--config", config, "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"),
        "--output_dir", str(out), "--train_split", "train", "--dev_split", "val", "--batch_size", "8",
        "--learning_rate", "1e-3", "--max_steps", "6", "--save_steps", "3", "--save_total_limit", "1",
        "--dev_questions", os.path.join(coco, "Questions", "v2_OpenEnded_mscoco_val2014_questions.json"),
        "--dev_annotations", os.path.join(coco, "Annotations", "v2_mscoco_val2014_annotations.json"),
    ] + COMMON  # fmt: skip


def test_vqa_finetune_evaluate_predict(sample_dir, tmp_path, tiny_config, entry_point):
    out = tmp_path / "vqa"
    assert entry_point("VQA2/run_vqa2.py")(vqa_args(sample_dir, out, tiny_config())) == 0
    info = json.loads((out / "run_info.json").read_text())
    assert info["args"]["max_steps"] == 6 and info["versions"]["paddlepaddle"] and "git_commit" in info
    assert sorted(p for p in os.listdir(out) if p.startswith("checkpoint-")) == ["checkpoint-6"]  # keeps the last 1
    assert os.path.exists(out / "training_curves.png") and os.listdir(out / "visualdl")
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert 0 <= best["vqa_score"] <= 1 and 0 <= best["official_overall"] <= 100
    vocab = os.path.join(sample_dir, "coco", "extras", "vocabs", "answers_vqa.txt")
    with open(vocab, encoding="utf-8") as f:
        answers = f.read()
    for folder in ("best", "checkpoint-6"):  # a model folder holds its answers: the predictor needs no --answers_file
        assert (out / folder / "answers_vqa.txt").read_text() == answers

    pred = tmp_path / "pred"
    argv = [
        "--input_dir", os.path.join(sample_dir, "coco"), "--model_name_or_path", str(out / "checkpoint-6"),
        "--output_dir", str(pred), "--split", "test", "--top_k", "3", "--num_workers", "0",
    ]  # fmt: skip
    assert entry_point("VQA2/run_predict.py")(argv) == 0
    result = json.loads((pred / "result.json").read_text())
    test_ids = [
        e["question_id"]
        for e in np.load(os.path.join(sample_dir, "coco", "imdb", "imdb_test2015.npy"), allow_pickle=True)[1:]
    ]
    assert sorted(r["question_id"] for r in result) == sorted(test_ids)
    assert all(isinstance(r["question_id"], int) and r["answer"] and r["answer"] != "<unk>" for r in result)
    topk = json.loads((pred / "result_topk.json").read_text())
    assert len(topk[0]["answers"]) == 3 and topk[0]["probs"] == sorted(topk[0]["probs"], reverse=True)
    assert topk[0]["answers"][0] == next(r["answer"] for r in result if r["question_id"] == topk[0]["question_id"])


def test_vqa_dev_metric_equals_the_official_tool_on_the_predictions(sample_dir, tmp_path, tiny_config, entry_point):
    """The official score reported in training equals evaluate.py's on result.json of the same checkpoint."""
    out = tmp_path / "vqa"
    entry_point("VQA2/run_vqa2.py")(vqa_args(sample_dir, out, tiny_config()))
    best = json.loads((out / "best" / "metrics.json").read_text())
    pred = tmp_path / "pred"
    argv = [
        "--input_dir", os.path.join(sample_dir, "coco"), "--model_name_or_path", str(out / "best"),
        "--output_dir", str(pred), "--split", "val", "--num_workers", "0",
    ]  # fmt: skip
    assert entry_point("VQA2/run_predict.py")(argv) == 0
    coco = os.path.join(sample_dir, "coco")
    official = evaluation.evaluate_files(
        os.path.join(coco, "Questions", "v2_OpenEnded_mscoco_val2014_questions.json"),
        os.path.join(coco, "Annotations", "v2_mscoco_val2014_annotations.json"),
        str(pred / "result.json"),
    )
    assert official["overall"] == best["official_overall"]


def test_nlvr2_finetune_and_predict(sample_dir, tmp_path, tiny_config, entry_point):
    out = tmp_path / "nlvr2"
    argv = [
        "--input_dir", os.path.join(sample_dir, "nlvr2"), "--config", tiny_config(),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--output_dir", str(out),
        "--batch_size", "8", "--max_steps", "4", "--save_steps", "4",
    ] + COMMON  # fmt: skip
    assert entry_point("NLVR2/run_nlvr2.py")(argv) == 0
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert set(metrics) == {"step", "accuracy", "consistency"} and metrics["consistency"] <= metrics["accuracy"]

    pred = tmp_path / "pred"
    argv = [
        "--input_dir", os.path.join(sample_dir, "nlvr2"), "--model_name_or_path", str(out / "best"),
        "--output_dir", str(pred), "--split", "test1", "--num_workers", "0",
    ]  # fmt: skip
    assert entry_point("NLVR2/run_predict.py")(argv) == 0
    with open(pred / "predictions_test1.csv") as f:
        rows = list(csv.reader(f))
    with open(os.path.join(sample_dir, "nlvr2", "test1.json")) as f:
        truth = {r["identifier"]: r["label"] for r in map(json.loads, f)}
    assert sorted(r[0] for r in rows) == sorted(truth) and {r[1] for r in rows} <= {"True", "False"}
    accuracy = np.mean([truth[identifier] == label for identifier, label in rows])
    assert json.loads((pred / "metrics_test1.json").read_text())["accuracy"] == pytest.approx(accuracy)


@pytest.mark.parametrize("dataset", ["coco_captions", "vqa2", "nlvr2"])
def test_pretraining_runs_on_each_dataset(sample_dir, tmp_path, tiny_config, entry_point, dataset):
    folder = "nlvr2" if dataset == "nlvr2" else "coco"
    splits = {"coco_captions": ["train"], "vqa2": ["train"], "nlvr2": ["train"]}[dataset]
    dev = {"coco_captions": "val", "vqa2": "val", "nlvr2": "dev"}[dataset]
    argv = [
        "--dataset", dataset, "--input_dir", os.path.join(sample_dir, folder), "--config", tiny_config(),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--output_dir", str(tmp_path),
        "--batch_size", "8", "--max_steps", "3", "--save_steps", "3", "--dev_split", dev, "--train_splits", *splits,
    ] + COMMON  # fmt: skip
    assert entry_point("run_pretrain.py")(argv) == 0
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert metrics["loss"] > 0 and 0 <= metrics["mlm_accuracy"] <= 1
    assert ("sentence_image_accuracy" in metrics) == (dataset != "vqa2")  # VQA task pretraining is MLM only


def test_coco_pretraining_can_exclude_vqa_images(sample_dir, tmp_path, tiny_config, entry_point):
    """The VQA COCO recipe drops the captions of minival images; excluding every val image leaves no val data."""
    coco = os.path.join(sample_dir, "coco")
    argv = [
        "--dataset", "coco_captions", "--input_dir", coco, "--config", tiny_config(), "--output_dir", str(tmp_path),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--train_splits", "val",
        "--exclude_vqa_imdb", os.path.join(coco, "imdb", "imdb_val2014.npy"), "--max_steps", "1",
    ] + COMMON  # fmt: skip
    assert entry_point("run_pretrain.py")(argv) == 2


def bad(capsys, main, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and all(f in err for f in fragments), err


def test_bad_inputs_fail_with_one_line(sample_dir, tmp_path, tiny_config, entry_point, capsys):
    nlvr2 = os.path.join(sample_dir, "nlvr2")
    vocab = os.path.join(sample_dir, "vocab.txt")
    run = entry_point("NLVR2/run_nlvr2.py")
    base = ["--input_dir", nlvr2, "--tokenizer_name_or_path", vocab, "--max_steps", "1", "--num_workers", "0"]
    out = ["--output_dir", str(tmp_path / "out")]
    bad(capsys, run, base + out + ["--model_name_or_path", "visualbert-nlvr3"], "visualbert-nlvr3", "not one of")
    bad(capsys, run, base + out + ["--model_name_or_path", str(tmp_path / "nowhere")], "nowhere")
    bad(capsys, run, base + out + ["--config", tiny_config(visual_embedding_dim=999)], "999", ".npy", "identifier")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    bad(capsys, run, base + ["--output_dir", str(blocker / "out"), "--config", tiny_config()], "not writable")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "train.json").write_text("")
    bad(capsys, run, base + out + ["--config", tiny_config(), "--input_dir", str(empty)], "train", "no examples")


def test_a_failed_run_leaves_existing_checkpoints_intact(sample_dir, tmp_path, tiny_config, entry_point, weights):
    run = entry_point("NLVR2/run_nlvr2.py")
    argv = [
        "--input_dir", os.path.join(sample_dir, "nlvr2"), "--output_dir", str(tmp_path),
        "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--batch_size", "4", "--max_steps", "2",
        "--save_steps", "2", "--dev_split", "",
    ] + COMMON  # fmt: skip
    assert run(argv + ["--config", tiny_config()]) == 0
    before = weights(tmp_path / "checkpoint-2")
    assert run(argv + ["--config", tiny_config(visual_embedding_dim=999)]) == 2
    after = weights(tmp_path / "checkpoint-2")
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
