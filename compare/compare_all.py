"""Compare all nine VisualBERT checkpoints with HF transformers and write a JSON report."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from paddlenlp_ext.transformers.visualbert.compare import main_all  # noqa: E402

if __name__ == "__main__":
    sys.exit(main_all())
