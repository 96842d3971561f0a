"""`make demo`: the whole pipeline on generated sample data with a small model, through the real entry points.

COCO caption pretraining -> VQA finetuning -> official evaluation on val -> result.json on test; NLVR2 finetuning ->
predictions on dev and test1. Prints where each output is, the accuracies, and the majority baselines beside them.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter

import numpy as np

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
SMALL = os.path.join(REPO, "configs", "visualbert-small.json")


def step(title: str, script: str, *args):
    """Run one entry point as a user would; stop the demo if it fails."""
    print(f"\n==> {title}\n    {script} {' '.join(args)}", flush=True)
    start = time.time()
    result = subprocess.run([sys.executable, os.path.join(REPO, script), *args])
    if result.returncode != 0:
        sys.exit(f"demo: {script} failed with exit code {result.returncode}")
    print(f"    ({time.time() - start:.0f} s)", flush=True)


def vqa_majority_baseline(coco_dir: str) -> float:
    """Soft score on val of always giving the most common train answer."""
    train = np.load(os.path.join(coco_dir, "imdb", "imdb_train2014.npy"), allow_pickle=True)[1:]
    val = np.load(os.path.join(coco_dir, "imdb", "imdb_val2014.npy"), allow_pickle=True)[1:]
    answer = Counter(a for q in train for a in q["answers"]).most_common(1)[0][0]
    return float(np.mean([min(0.3 * q["answers"].count(answer), 1.0) for q in val]))


def nlvr2_majority_baseline(nlvr2_dir: str, split: str) -> float:
    with open(os.path.join(nlvr2_dir, f"{split}.json"), encoding="utf-8") as f:
        labels = [json.loads(line)["label"] for line in f if line.strip()]
    return max(Counter(labels).values()) / len(labels)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "output", "demo"), help="everything is written here")
    parser.add_argument("--cpu_threads", default="1", help="a small model runs fastest on one math thread")
    args = parser.parse_args(argv)
    start = time.time()
    data, out = os.path.join(args.out, "data"), args.out
    coco, nlvr2, vocab = os.path.join(data, "coco"), os.path.join(data, "nlvr2"), os.path.join(data, "vocab.txt")
    common = ["--tokenizer_name_or_path", vocab, "--cpu_threads", args.cpu_threads, "--num_workers", "2"]
    common += ["--logging_steps", "50", "--device", "cpu"]

    print(f"==> sample data in {data}", flush=True)
    subprocess.run([sys.executable, "-m", "paddlenlp_ext.datasets.sample", "--out", data], check=True, cwd=REPO)

    pretrain_dir = os.path.join(out, "pretrain-coco")
    step(
        "COCO caption pretraining (masked LM + sentence-image matching)", "run_pretrain.py",
        "--dataset", "coco_captions", "--input_dir", coco, "--config", SMALL, "--output_dir", pretrain_dir,
        "--train_splits", "train", "--dev_split", "val", "--batch_size", "64", "--learning_rate", "1e-3",
        "--max_steps", "150", "--save_steps", "150", *common,
    )  # fmt: skip
    vqa_dir = os.path.join(out, "vqa")
    questions = os.path.join(coco, "Questions", "v2_OpenEnded_mscoco_val2014_questions.json")
    annotations = os.path.join(coco, "Annotations", "v2_mscoco_val2014_annotations.json")
    step(
        "VQA finetuning from the pretrained model", "VQA2/run_vqa2.py",
        "--input_dir", coco, "--model_name_or_path", os.path.join(pretrain_dir, "checkpoint-150"),
        "--output_dir", vqa_dir, "--train_split", "train", "--dev_split", "val", "--batch_size", "32",
        "--learning_rate", "1e-3", "--num_train_epochs", "6", "--save_steps", "0",
        "--dev_questions", questions, "--dev_annotations", annotations, *common,
    )  # fmt: skip
    vqa_val, vqa_test = os.path.join(out, "vqa-val"), os.path.join(out, "vqa-test")
    predict = ["--input_dir", coco, "--model_name_or_path", os.path.join(vqa_dir, "best"), *common[:4]]
    step("VQA prediction on val", "VQA2/run_predict.py", *predict, "--split", "val", "--output_dir", vqa_val)
    step("VQA prediction on test (EvalAI format)", "VQA2/run_predict.py", *predict, "--split", "test",
         "--output_dir", vqa_test, "--top_k", "3")  # fmt: skip
    evaluation = subprocess.run(
        [sys.executable, os.path.join(REPO, "VQA2", "evaluate.py"), "--questions", questions,
         "--annotations", annotations, "--result", os.path.join(vqa_val, "result.json")],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    official = json.loads(evaluation)

    nlvr2_dir = os.path.join(out, "nlvr2")
    step(
        "NLVR2 finetuning", "NLVR2/run_nlvr2.py",
        "--input_dir", nlvr2, "--config", SMALL, "--output_dir", nlvr2_dir, "--batch_size", "32",
        "--learning_rate", "1e-3", "--num_train_epochs", "6", "--save_steps", "0", *common,
    )  # fmt: skip
    nlvr2_predict = ["--input_dir", nlvr2, "--model_name_or_path", os.path.join(nlvr2_dir, "best"), *common[:4]]
    for split in ("dev", "test1"):
        step(f"NLVR2 prediction on {split}", "NLVR2/run_predict.py", *nlvr2_predict, "--split", split,
             "--output_dir", os.path.join(out, "nlvr2-predict"))  # fmt: skip
    with open(os.path.join(out, "nlvr2-predict", "metrics_dev.json"), encoding="utf-8") as f:
        nlvr2_dev = json.load(f)
    with open(os.path.join(out, "nlvr2-predict", "metrics_test1.json"), encoding="utf-8") as f:
        nlvr2_test = json.load(f)

    rows = [
        ("VQA val, official accuracy", official["overall"] / 100, vqa_majority_baseline(coco)),
        ("NLVR2 dev accuracy", nlvr2_dev["accuracy"], nlvr2_majority_baseline(nlvr2, "dev")),
        ("NLVR2 test1 accuracy", nlvr2_test["accuracy"], nlvr2_majority_baseline(nlvr2, "test1")),
    ]
    print(f"\n==> demo finished in {(time.time() - start) / 60:.1f} min\n")
    print(f"{'':30} {'model':>8} {'majority baseline':>18}")
    for name, value, baseline in rows:
        print(f"{name:30} {value:8.3f} {baseline:18.3f}")
    print(f"{'NLVR2 dev consistency':30} {nlvr2_dev['consistency']:8.3f}")
    print("\noutputs:")
    for what, path in [
        ("pretrained model", os.path.join(pretrain_dir, "checkpoint-150")),
        ("VQA model (best on val)", os.path.join(vqa_dir, "best")),
        ("VQA training curves", os.path.join(vqa_dir, "training_curves.png")),
        ("VQA test result.json (EvalAI)", os.path.join(vqa_test, "result.json")),
        ("NLVR2 model (best on dev)", os.path.join(nlvr2_dir, "best")),
        ("NLVR2 test1 predictions", os.path.join(out, "nlvr2-predict", "predictions_test1.csv")),
    ]:
        print(f"  {what:30} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
