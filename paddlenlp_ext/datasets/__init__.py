"""Dataset builders for VQA v2, NLVR2 and COCO captions, plus the region features they refer to.

Importing this package registers ``vqa2``, ``nlvr2`` and ``coco_captions`` so that
``paddlenlp.datasets.load_dataset("vqa2", splits=..., data_dir=...)`` finds them.
"""

import sys

import paddlenlp.datasets

from . import coco_captions, nlvr2, vqa2
from .coco_captions import COCOCaptions
from .errors import DataFormatError, MissingFeatureError
from .features import FEATURE_TYPES, RegionFeatures, coco_image_name, nlvr2_image_names
from .nlvr2 import NLVR2
from .vqa2 import VQA2

__all__ = [
    "FEATURE_TYPES",
    "NLVR2",
    "VQA2",
    "COCOCaptions",
    "DataFormatError",
    "MissingFeatureError",
    "RegionFeatures",
    "coco_image_name",
    "nlvr2_image_names",
]

# load_dataset(name) imports `paddlenlp.datasets.<name>` and takes the DatasetBuilder subclass defined there.
for _module in (coco_captions, nlvr2, vqa2):
    _name = _module.__name__.rsplit(".", 1)[-1]
    sys.modules[f"{paddlenlp.datasets.__name__}.{_name}"] = _module
    setattr(paddlenlp.datasets, _name, _module)
