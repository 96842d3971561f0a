"""What the task modules share: one split of a registered dataset, a run's region features and collator (from its
command-line flags), and batched inference over a task dataset (with an eager model or an exported one)."""

import os

import numpy as np
import paddle
from paddlenlp.datasets import load_dataset
from tqdm import tqdm

from .collate import MODEL_INPUTS, VisualBertCollator, model_inputs
from .features import RegionFeatures
from .loader import BatchLoader


def feature_dir(args) -> str:
    """--feature_dir, else --input_dir: the folder holding the ``data/detectron_fix_*`` tree."""
    folder = args.feature_dir or args.input_dir
    if not folder:
        raise ValueError("give --input_dir (or --feature_dir) so the region features can be found")
    return folder


def load_records(name: str, split: str, data_dir: str):
    """One split of a registered dataset; an empty split is an error, not a silent no-op."""
    if data_dir is None:
        raise ValueError(f"give --input_dir: the folder holding the {name} files")
    records = load_dataset(name, splits=[split], data_dir=data_dir)
    if len(records) == 0:
        raise ValueError(f"{name} split {split!r} under {data_dir} has no examples")
    return records


def features(args, feature_type: str, dim: int, max_boxes: int | None = None) -> RegionFeatures:
    """The region features of ``feature_type`` under the run's feature folder."""
    return RegionFeatures(feature_dir(args), feature_type, dim=dim, max_boxes=max_boxes)


def collator(tokenizer) -> VisualBertCollator:
    """The collator padding text with ``tokenizer``'s [PAD]."""
    return VisualBertCollator(tokenizer.pad_token_id)


@paddle.no_grad()
def batched_outputs(model, dataset, tokenizer, batch_size: int, num_workers: int, desc: str, labels: bool = True):
    """Yield (batch, model output) over `dataset` in order.

    An eager model (a paddle.nn.Layer) runs in eval mode (the caller restores train mode) on the batch's inputs and,
    with `labels`, its labels, and gives its ModelOutput. Anything else is an exported model
    (`paddlenlp_ext.deploy.InferenceModel`): it takes the inputs only and gives a dict of numpy arrays. Either
    output is read by name: `output["logits"]`."""
    eager = isinstance(model, paddle.nn.Layer)
    if eager:
        model.eval()
    size = len(dataset)
    batches = [list(range(start, min(start + batch_size, size))) for start in range(0, size, batch_size)]
    loader = BatchLoader(dataset, collator(tokenizer), num_workers)
    for batch in tqdm(
        loader.iterate(batches),
        total=len(batches),
        desc=desc,
        leave=False,
        disable=True if os.environ.get("PADDLE_TRAINER_ID", "0") != "0" else None,
    ):
        inputs = model_inputs(batch)
        if not (eager and labels):
            inputs = {name: inputs[name] for name in MODEL_INPUTS}
        yield batch, model(**inputs, return_dict=True) if eager else model(**inputs)


def numpy_ids(values) -> list:
    """question_id arrays (tensors from the loader) or identifier lists -> a plain list."""
    if isinstance(values, paddle.Tensor):
        values = values.numpy()
    return [int(v) for v in values] if isinstance(values, np.ndarray) else list(values)
