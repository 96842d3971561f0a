"""`make demo`: the whole pipeline on generated sample data with a small model, through the real entry points.

COCO caption pretraining, then two branches side by side (one math thread each, so both cores work): VQA finetuning ->
official evaluation on val -> result.json on test, and NLVR2 finetuning -> predictions on dev and test1. Each step's
output goes to `<out>/logs/`; the console shows the steps, where each output is, the accuracies, and the majority
baselines beside them.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .paths import REPO_ROOT

SMALL = os.path.join(REPO_ROOT, "configs", "visualbert-small.json")


def step(log: str, title: str, script: str, *args) -> None:
    """Run one entry point as a user would, its output going to `log`; stop the demo if it fails."""
    os.makedirs(os.path.dirname(log), exist_ok=True)
    start = time.time()
    with open(log, "w", encoding="utf-8") as f:
        f.write(f"{script} {' '.join(args)}\n")
        f.flush()
        result = subprocess.run(
            [sys.executable, os.path.join(REPO_ROOT, script), *args], stdout=f, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        with open(log, encoding="utf-8") as f:
            print(f.read()[-3000:], flush=True)
        sys.exit(f"demo: {script} failed with exit code {result.returncode}; its output is in {log}")
    print(f"==> {title}: {time.time() - start:.0f} s (log: {log})", flush=True)


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
    parser.add_argument("--out", default=os.path.join(REPO_ROOT, "output", "demo"), help="everything is written here")
    parser.add_argument("--cpu_threads", default="1", help="a small model runs fastest on one math thread")
    args = parser.parse_args(argv)
    start = time.time()
    data, out = os.path.join(args.out, "data"), args.out
    coco, nlvr2, vocab = os.path.join(data, "coco"), os.path.join(data, "nlvr2"), os.path.join(data, "vocab.txt")
    common = ["--tokenizer_name_or_path", vocab, "--cpu_threads", args.cpu_threads, "--num_workers", "1"]
    # the training steps (common[:4] goes to the predictions); a demo run replaces the previous demo's training runs
    common += ["--logging_steps", "50", "--device", "cpu", "--overwrite_output_dir"]

    print(f"==> sample data in {data}", flush=True)
    subprocess.run([sys.executable, "-m", "paddlenlp_ext.data.sample", "--out", data], check=True, cwd=REPO_ROOT)

    logs = os.path.join(out, "logs")
    pretrain_dir = os.path.join(out, "pretrain-coco")
    step(
        os.path.join(logs, "pretrain-coco.log"), "COCO caption pretraining (masked LM + sentence-image matching)",
        "run_pretrain.py", "--dataset", "coco_captions", "--input_dir", coco, "--config", SMALL,
        "--output_dir", pretrain_dir, "--train_splits", "train", "--dev_split", "val", "--batch_size", "64",
        "--learning_rate", "1e-3", "--max_steps", "150", "--save_steps", "150", *common,
    )  # fmt: skip

    vqa_dir, vqa_val, vqa_test = (os.path.join(out, name) for name in ("vqa", "vqa-val", "vqa-test"))
    questions = os.path.join(coco, "Questions", "v2_OpenEnded_mscoco_val2014_questions.json")
    annotations = os.path.join(coco, "Annotations", "v2_mscoco_val2014_annotations.json")

    def vqa_branch():
        step(
            os.path.join(logs, "vqa-finetune.log"), "VQA finetuning from the pretrained model", "VQA2/run_vqa2.py",
            "--input_dir", coco, "--model_name_or_path", os.path.join(pretrain_dir, "checkpoint-150"),
            "--output_dir", vqa_dir, "--train_split", "train", "--dev_split", "val", "--batch_size", "32",
            "--learning_rate", "1e-3", "--num_train_epochs", "16", "--save_steps", "0",
            "--dev_questions", questions, "--dev_annotations", annotations, *common,
        )  # fmt: skip
        predict = ["--input_dir", coco, "--model_name_or_path", os.path.join(vqa_dir, "best"), *common[:4]]
        step(os.path.join(logs, "vqa-predict-val.log"), "VQA prediction on val", "VQA2/run_predict.py", *predict,
             "--split", "val", "--output_dir", vqa_val)  # fmt: skip
        step(os.path.join(logs, "vqa-predict-test.log"), "VQA prediction on test (EvalAI format)",
             "VQA2/run_predict.py", *predict, "--split", "test", "--output_dir", vqa_test, "--top_k", "3")  # fmt: skip
        evaluation = subprocess.run(
            [sys.executable, os.path.join(REPO_ROOT, "VQA2", "evaluate.py"), "--questions", questions,
             "--annotations", annotations, "--result", os.path.join(vqa_val, "result.json")],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        return json.loads(evaluation)

    nlvr2_dir, nlvr2_out = os.path.join(out, "nlvr2"), os.path.join(out, "nlvr2-predict")

    def nlvr2_branch():
        step(
            os.path.join(logs, "nlvr2-finetune.log"), "NLVR2 finetuning", "NLVR2/run_nlvr2.py",
            "--input_dir", nlvr2, "--config", SMALL, "--output_dir", nlvr2_dir, "--batch_size", "32",
            "--learning_rate", "1e-3", "--num_train_epochs", "8", "--save_steps", "0", *common,
        )  # fmt: skip
        predict = ["--input_dir", nlvr2, "--model_name_or_path", os.path.join(nlvr2_dir, "best"), *common[:4]]
        metrics = {}
        for split in ("dev", "test1"):
            step(os.path.join(logs, f"nlvr2-predict-{split}.log"), f"NLVR2 prediction on {split}",
                 "NLVR2/run_predict.py", *predict, "--split", split, "--output_dir", nlvr2_out)  # fmt: skip
            with open(os.path.join(nlvr2_out, f"metrics_{split}.json"), encoding="utf-8") as f:
                metrics[split] = json.load(f)
        return metrics

    print("==> VQA and NLVR2 finetuning side by side", flush=True)
    with ThreadPoolExecutor(2) as pool:
        vqa, nlvr2_metrics = pool.submit(vqa_branch), pool.submit(nlvr2_branch)
        official, nlvr2_metrics = vqa.result(), nlvr2_metrics.result()
    nlvr2_dev, nlvr2_test = nlvr2_metrics["dev"], nlvr2_metrics["test1"]

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
        ("NLVR2 test1 predictions", os.path.join(nlvr2_out, "predictions_test1.csv")),
        ("logs of every step", logs),
    ]:
        print(f"  {what:30} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
