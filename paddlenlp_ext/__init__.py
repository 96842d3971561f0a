"""VisualBERT for PaddleNLP.

Importing this package registers the VisualBERT model classes into ``paddlenlp.transformers`` and the
``coco_captions``, ``vqa2`` and ``nlvr2`` dataset builders into ``paddlenlp.datasets``.
"""

from . import transformers  # noqa: F401  (import registers)
from .tasks import register_builders

register_builders()
