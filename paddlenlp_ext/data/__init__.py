"""What the tasks share: region features on disk, the tokenizer and text layout, masking, batching, and the
``TaskDataset`` base the task datasets (``paddlenlp_ext.tasks.*.dataset``) build on.

``VisualBertCollator`` pads a batch and ``BatchLoader`` runs the DataLoader, its workers writing batches into shared
memory; ``MODEL_INPUTS`` and ``LABEL_INPUTS`` name the batch keys the model takes.
"""

from .base import TaskDataset
from .collate import LABEL_INPUTS, MODEL_INPUTS, VisualBertCollator, model_inputs
from .errors import DataFormatError, MissingFeatureError
from .features import FEATURE_TYPES, RegionFeatures, coco_image_name, nlvr2_image_names
from .loader import BatchLoader
from .masking import IGNORE_INDEX, TokenMasker
from .text import build_text, check_tokenizer, load_tokenizer, truncate_pair_from_front

__all__ = [
    "BatchLoader",
    "FEATURE_TYPES",
    "IGNORE_INDEX",
    "LABEL_INPUTS",
    "MODEL_INPUTS",
    "DataFormatError",
    "MissingFeatureError",
    "RegionFeatures",
    "TaskDataset",
    "TokenMasker",
    "VisualBertCollator",
    "build_text",
    "check_tokenizer",
    "coco_image_name",
    "load_tokenizer",
    "model_inputs",
    "nlvr2_image_names",
    "truncate_pair_from_front",
]
