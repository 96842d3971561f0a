"""VisualBERT for PaddlePaddle.

Importing this package registers the VisualBERT model classes into ``paddlenlp.transformers`` and the
``coco_captions``, ``vqa2`` and ``nlvr2`` dataset builders into ``paddlenlp.datasets``.
"""

import logging
import warnings

from . import lifetime  # noqa: F401  (first: it notes this process's parent, a rank's launcher)

# Third-party noise printed on every run: installed before the first `import paddle` (paddle.utils.cpp_extension
# warns about ccache at import; setuptools about its distutils shim), which works as every entry point imports
# paddlenlp_ext first.
warnings.filterwarnings("ignore", message="No ccache found", category=UserWarning)
warnings.filterwarnings("ignore", message="Setuptools is replacing distutils", category=UserWarning)
# datasets announces the frameworks it found (config.py logs to the "datasets" logger); paddle's downloader logs its
# endpoints at every from_pretrained.
logging.getLogger("datasets").addFilter(lambda record: not record.getMessage().startswith("PyTorch version"))
logging.getLogger("paddle.utils.download").addFilter(lambda record: not record.getMessage().startswith("unique_"))

from paddlenlp.utils.log import logger  # noqa: E402

from . import transformers  # noqa: E402, F401  (import registers)
from .tasks import register_builders  # noqa: E402

# A log file gets plain lines: PaddleNLP's logger colours only on a terminal, decided here once (PaddleNLP's colorlog
# formatter is given no stream to ask). The project's progress bars pass disable=None: drawn on a terminal only.
logger.format.no_color = not getattr(logger.handler.stream, "isatty", lambda: False)()
register_builders()
