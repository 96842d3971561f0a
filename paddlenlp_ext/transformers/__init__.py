"""VisualBERT models, registered into ``paddlenlp.transformers`` on import."""

import sys

import paddlenlp.transformers

from .. import cpu_backend
from . import auto
from .visualbert import configuration, modeling
from .visualbert.configuration import *  # noqa: F401,F403
from .visualbert.modeling import *  # noqa: F401,F403

_PUBLIC = ["VisualBertConfig", *modeling.__all__]

# `from paddlenlp.transformers import VisualBertForQuestionAnswering` and the module path PaddleNLP uses for its
# own models (paddlenlp.transformers.visualbert.modeling) both work after `import paddlenlp_ext`.
for _name in _PUBLIC:
    setattr(paddlenlp.transformers, _name, globals()[_name])
sys.modules.setdefault("paddlenlp.transformers.visualbert", sys.modules[__name__ + ".visualbert"])
sys.modules.setdefault("paddlenlp.transformers.visualbert.configuration", configuration)
sys.modules.setdefault("paddlenlp.transformers.visualbert.modeling", modeling)

auto.register()

# The one place the CPU backend is applied: every model, once built, gets its fused blocks (see cpu_backend).
modeling.VisualBertPretrainedModel.construction_hooks.append(cpu_backend.apply)
