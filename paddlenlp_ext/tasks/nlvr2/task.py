"""NLVR2: finetuning data, accuracy and consistency, and the prediction CSV."""

import contextlib
import csv
import json
import os
from collections import defaultdict

import numpy as np

from ...data import loading
from ...files import atomic_file
from .dataset import Nlvr2Dataset

FEATURE_TYPE = "nlvr2_detectron_fix_144"


def add_data_args(parser):
    """The data flags of finetuning and prediction alike."""
    parser.add_argument("--max_boxes", type=int, help="boxes per image (default: all, up to 144)")


def add_train_args(parser):
    """Finetuning's splits."""
    parser.add_argument("--train_split", default="train")
    parser.add_argument("--dev_split", default="dev", help="split to evaluate on ('' for none)")


def add_predict_args(parser):
    """The split to predict."""
    parser.add_argument("--split", default="dev", help="dev or test1")


def dataset(args, tokenizer, split: str, dim: int, pretraining=False) -> Nlvr2Dataset:
    """The Nlvr2Dataset of one split, its feature files checked now (every one exists, the first example's are
    read), so a missing file, wrong folder or dim fails before training."""
    data = Nlvr2Dataset(
        loading.load_records("nlvr2", split, args.input_dir),
        loading.features(args, FEATURE_TYPE, dim, args.max_boxes),
        tokenizer,
        pretraining=pretraining,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
    )
    data.check_features()
    return data


def predict(model, data: Nlvr2Dataset, tokenizer, batch_size: int, num_workers: int):
    """(identifiers, predicted labels: 1 = True). model: the eager head or an exported one (see
    loading.batched_outputs)."""
    identifiers, predictions = [], []
    outputs = loading.batched_outputs(model, data, tokenizer, batch_size, num_workers, "predict", labels=False)
    for batch, output in outputs:
        predictions.append(np.asarray(output["logits"]).argmax(-1))
        identifiers += loading.numpy_ids(batch["identifier"])
    return identifiers, np.concatenate(predictions)


def accuracy_and_consistency(records, identifiers, predictions) -> dict:
    """Accuracy, and consistency: the fraction of unique sentences whose every example is predicted correctly."""
    by_id = {record["identifier"]: record for record in records}
    correct = [int(p) == by_id[i]["label"] for i, p in zip(identifiers, predictions)]
    per_sentence = defaultdict(list)
    for identifier, ok in zip(identifiers, correct):
        per_sentence[by_id[identifier]["sentence"]].append(ok)
    return {
        "accuracy": float(np.mean(correct)),
        "consistency": float(np.mean([all(oks) for oks in per_sentence.values()])),
    }


def evaluate(model, data: Nlvr2Dataset, tokenizer, args) -> dict:
    """Accuracy and consistency of the model's predictions on ``data``."""
    identifiers, predictions = predict(model, data, tokenizer, args.batch_size, args.num_workers)
    return accuracy_and_consistency(data.records, identifiers, predictions)


def write_predictions(output_dir: str, split: str, identifiers, predictions, metrics: dict) -> str:
    """predictions_<split>.csv (lines `identifier,True|False`) and metrics_<split>.json of one prediction: both are
    written before either replaces an earlier file, the CSV renamed into place last; returns the CSV's path."""
    path = os.path.join(output_dir, f"predictions_{split}.csv")
    with contextlib.ExitStack() as files:  # closes (renames) in reverse: the metrics, then the CSV
        writer = csv.writer(files.enter_context(atomic_file(path, "w", newline="")))
        json.dump(
            metrics, files.enter_context(atomic_file(os.path.join(output_dir, f"metrics_{split}.json"))), indent=2
        )
        for identifier, prediction in zip(identifiers, predictions):
            writer.writerow([identifier, "True" if int(prediction) == 1 else "False"])
    return path
