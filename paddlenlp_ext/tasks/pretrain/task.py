"""Pretraining data (COCO caption pairs, VQA2 question + answer, NLVR2 statements) and its dev metrics."""

import numpy as np

from ...data import loading
from ..nlvr2.dataset import Nlvr2Dataset
from ..vqa.dataset import VqaDataset
from .dataset import CocoCaptionsDataset

DATASETS = {  # name -> (task dataset class, default feature type)
    "coco_captions": (CocoCaptionsDataset, "coco_detectron_fix_100"),
    "vqa2": (VqaDataset, "coco_detectron_fix_100"),
    "nlvr2": (Nlvr2Dataset, "nlvr2_detectron_fix_144"),
}


def add_args(parser):
    """The pretraining flags: which dataset and splits, and its features."""
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--train_splits", nargs="+", help="default: train and val (COCO), trainval (VQA2), train")
    parser.add_argument("--dev_split", default="", help="split for dev loss/accuracy ('' for none)")
    parser.add_argument(
        "--feature_type",
        help="coco_detectron_fix_144 for the 1024-d NLVR2-flavour COCO features (default per dataset)",
    )
    parser.add_argument("--max_boxes", type=int, help="boxes per image (default: all released)")
    parser.add_argument("--exclude_vqa_imdb", help="an imdb .npy (e.g. minival) whose images COCO pretraining skips")


def default_splits(name: str) -> list:
    """The splits pretraining on ``name`` trains on when --train_splits is not given."""
    return {"coco_captions": ["train", "val"], "vqa2": ["trainval"], "nlvr2": ["train"]}[name]


def dataset(args, tokenizer, splits, dim: int):
    """The pretraining dataset over `splits`, with its first feature file read now."""
    cls, feature_type = DATASETS[args.dataset]
    records = [record for split in splits for record in loading.load_records(args.dataset, split, args.input_dir)]
    if args.exclude_vqa_imdb:
        excluded = {entry["image_name"] for entry in np.load(args.exclude_vqa_imdb, allow_pickle=True)[1:]}
        records = [record for record in records if record["image_name"] not in excluded]
    extra = {} if cls is CocoCaptionsDataset else {"pretraining": True}
    data = cls(
        records,
        loading.features(args, args.feature_type or feature_type, dim, args.max_boxes),
        tokenizer,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
        **extra,
    )
    data.check_features()
    return data


def evaluate(model, data, tokenizer, args) -> dict:
    """Dev loss, masked-token accuracy and (where the task has it) sentence-image accuracy."""
    losses, mlm_hits, mlm_total, sim_hits, sim_total = [], 0, 0, 0, 0
    for batch, output in loading.batched_outputs(model, data, tokenizer, args.batch_size, args.num_workers, "dev"):
        losses.append(float(output.loss))
        labels = batch["labels"].numpy()
        labelled = labels[labels >= 0]  # [N]: with labels, prediction_logits holds these positions' rows
        mlm_hits += int((output.prediction_logits.argmax(-1).numpy() == labelled).sum())
        mlm_total += labelled.size
        if "sentence_image_labels" in batch:
            predicted = output.seq_relationship_logits.argmax(-1).numpy()
            sim_hits += int((predicted == batch["sentence_image_labels"].numpy()).sum())
            sim_total += len(predicted)
    metrics = {"loss": float(np.mean(losses)), "mlm_accuracy": mlm_hits / max(mlm_total, 1)}
    if sim_total:
        metrics["sentence_image_accuracy"] = sim_hits / sim_total
    return metrics
