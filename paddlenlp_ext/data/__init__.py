"""Examples and batches: builder records + region features -> task examples (numpy) -> padded batches.

Per task: ``VqaDataset`` (fine-tuning or task pretraining), ``Nlvr2Dataset`` (fine-tuning or task pretraining),
``CocoCaptionsDataset`` (COCO pretraining). ``VisualBertCollator`` pads a batch; ``MODEL_INPUTS`` and
``LABEL_INPUTS`` name the batch keys the model takes.
"""

from .base import TaskDataset
from .coco_captions import CocoCaptionsDataset
from .collate import LABEL_INPUTS, MODEL_INPUTS, VisualBertCollator
from .masking import IGNORE_INDEX, TokenMasker
from .nlvr2 import Nlvr2Dataset
from .text import build_text, check_tokenizer, load_tokenizer, truncate_pair_from_front
from .vqa import VqaDataset

__all__ = [
    "IGNORE_INDEX",
    "LABEL_INPUTS",
    "MODEL_INPUTS",
    "CocoCaptionsDataset",
    "Nlvr2Dataset",
    "TaskDataset",
    "TokenMasker",
    "VisualBertCollator",
    "VqaDataset",
    "build_text",
    "check_tokenizer",
    "load_tokenizer",
    "truncate_pair_from_front",
]
