"""Batching: pad examples into the numpy arrays the model takes (HF VisualBERT argument names), and pick the
entries of a batch the model is called with."""

import numpy as np
import paddle

from .errors import DATA_ERROR
from .masking import IGNORE_INDEX

# Model arguments every batch holds; a trainer passes these (plus the label keys present) to the model.
MODEL_INPUTS = (
    "input_ids",  # int64 [B, L]
    "token_type_ids",  # int64 [B, L]
    "attention_mask",  # int64 [B, L]: 1 on text, 0 on padding
    "visual_embeds",  # float32 [B, Nv, D]
    "visual_token_type_ids",  # int64 [B, Nv]
    "visual_attention_mask",  # int64 [B, Nv]: 1 on boxes, 0 on padding
)
# Label arguments, present when the task has them:
# labels: float32 [B, num_answers] soft scores (VQA), int64 [B] (NLVR2), or int64 [B, L + Nv] masked-LM targets
# (pretraining, IGNORE_INDEX where ignored); sentence_image_labels: int64 [B], 1 = the text matches the image.
LABEL_INPUTS = ("labels", "sentence_image_labels")


def model_inputs(batch: dict) -> dict:
    """The batch entries the model takes, as tensors (ids such as question_id stay behind); raises the data error a
    batch carries from a DataLoader worker, in the process that trains or predicts."""
    if DATA_ERROR in batch:
        raise batch[DATA_ERROR]
    return {k: _tensor(batch[k]) for k in MODEL_INPUTS + LABEL_INPUTS if k in batch}


def _tensor(value):
    # the DataLoader already hands over tensors; prediction helpers may pass numpy
    return value if isinstance(value, paddle.Tensor) else paddle.to_tensor(value)


# Per-example keys the collator turns into batch keys; any other key (question_id, identifier) is passed through.
_EXAMPLE_KEYS = {
    "input_ids",
    "token_type_ids",
    "visual_embeds",
    "visual_token_type_ids",
    "labels",
    "mlm_labels",
    "sentence_image_labels",
}


class VisualBertCollator:
    """Pads a list of task examples into one batch.

    Text is right-padded to the longest example (``pad_token_id``, mask 0), boxes to the most boxes (zeros, mask 0).
    An example's ``visual_embeds`` is one ``[boxes, dim]`` array or a tuple of them, one per image (NLVR2's left and
    right), placed one after the other: each is copied once, from the feature file's mapping into the batch.
    Per-example ``mlm_labels`` (one per text token) become the batch ``labels`` of length ``L + Nv``, ignored on
    padding and on every visual position, as HF's VisualBERT pretraining head expects. Other per-example keys
    (``question_id``, ``identifier``) are kept, as an int64 array when they are integers, else as a list.
    A batch with an example carrying a data error (see ``TaskDataset``) is that error: ``{DATA_ERROR: error}``.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict], empty=np.empty) -> dict:
        """The batch of ``examples``; each of its arrays is made by ``empty(shape, dtype)`` and then written whole
        (a DataLoader worker passes a function placing them in shared memory, see ``BatchLoader``)."""
        for example in examples:
            if DATA_ERROR in example:
                # Paddle's loader silently drops a batch without arrays: the placeholder carries the error through.
                return {DATA_ERROR: example[DATA_ERROR], "placeholder": np.zeros(1, dtype=np.int64)}
        keys = set(examples[0])
        for example in examples[1:]:
            if set(example) != keys:
                raise ValueError(f"examples in one batch differ in keys: {sorted(keys)} vs {sorted(example)}")
        batch_size = len(examples)
        text_length = max(len(example["input_ids"]) for example in examples)
        images = [_images(example["visual_embeds"]) for example in examples]
        num_boxes = max(sum(len(image) for image in example_images) for example_images in images)
        dim = images[0][0].shape[1]

        def full(shape, value, dtype):
            array = empty(shape, dtype)
            array.fill(value)
            return array

        batch = {
            "input_ids": full((batch_size, text_length), self.pad_token_id, np.int64),
            "token_type_ids": full((batch_size, text_length), 0, np.int64),
            "attention_mask": full((batch_size, text_length), 0, np.int64),
            "visual_embeds": empty((batch_size, num_boxes, dim), np.float32),  # padding zeroed row by row
            "visual_token_type_ids": full((batch_size, num_boxes), 0, np.int64),
            "visual_attention_mask": full((batch_size, num_boxes), 0, np.int64),
        }
        for row, example in enumerate(examples):
            length, boxes = len(example["input_ids"]), sum(len(image) for image in images[row])
            batch["input_ids"][row, :length] = example["input_ids"]
            batch["token_type_ids"][row, :length] = example["token_type_ids"]
            batch["attention_mask"][row, :length] = 1
            np.concatenate(images[row], out=batch["visual_embeds"][row, :boxes])
            batch["visual_embeds"][row, boxes:] = 0
            batch["visual_token_type_ids"][row, :boxes] = example["visual_token_type_ids"]
            batch["visual_attention_mask"][row, :boxes] = 1

        if "mlm_labels" in keys:
            labels = full((batch_size, text_length + num_boxes), IGNORE_INDEX, np.int64)
            for row, example in enumerate(examples):
                labels[row, : len(example["mlm_labels"])] = example["mlm_labels"]
            batch["labels"] = labels
        elif "labels" in keys:
            first = np.asarray(examples[0]["labels"])
            labels = empty((batch_size, *first.shape), np.float32 if first.dtype.kind == "f" else np.int64)
            for row, example in enumerate(examples):
                labels[row] = example["labels"]
            batch["labels"] = labels
        if "sentence_image_labels" in keys:
            labels = empty((batch_size,), np.int64)
            labels[:] = [example["sentence_image_labels"] for example in examples]
            batch["sentence_image_labels"] = labels

        for key in sorted(keys - _EXAMPLE_KEYS):
            values = [example[key] for example in examples]
            is_int = all(isinstance(value, (int, np.integer)) for value in values)
            if is_int:
                batch[key] = ids = empty((batch_size,), np.int64)
                ids[:] = values
            else:
                batch[key] = values
        return batch


def _images(visual_embeds) -> tuple:
    return (visual_embeds,) if isinstance(visual_embeds, np.ndarray) else tuple(visual_embeds)
