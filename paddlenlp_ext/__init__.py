"""VisualBERT for PaddleNLP.

Importing this package registers the VisualBERT model classes into ``paddlenlp.transformers`` and the
``coco_captions``, ``vqa2`` and ``nlvr2`` dataset builders into ``paddlenlp.datasets``.
"""

from . import datasets, transformers  # noqa: F401  (import registers)
