"""One package per task: ``vqa`` (VQA v2), ``nlvr2`` and ``pretrain`` (COCO captions, and task pretraining on the
other two). Each holds its DatasetBuilder (``builder``), examples (``dataset``) and what its entry points run
(``task``: flags, datasets, dev metrics, prediction).
"""

import sys

import paddlenlp.datasets

from .nlvr2 import builder as nlvr2_builder
from .pretrain import builder as coco_captions_builder
from .vqa import builder as vqa2_builder

# load_dataset's name of each dataset -> the module defining its DatasetBuilder.
BUILDERS = {"coco_captions": coco_captions_builder, "nlvr2": nlvr2_builder, "vqa2": vqa2_builder}


def register_builders() -> None:
    """Make ``paddlenlp.datasets.load_dataset(name, ...)`` find the builders of ``BUILDERS``.

    load_dataset(name) imports ``paddlenlp.datasets.<name>`` and takes the DatasetBuilder subclass defined there.
    """
    for name, module in BUILDERS.items():
        sys.modules[f"{paddlenlp.datasets.__name__}.{name}"] = module
        setattr(paddlenlp.datasets, name, module)
