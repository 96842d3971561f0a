"""Compare one VisualBERT checkpoint between HF transformers and its Paddle conversion (see compare.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from paddlenlp_ext.transformers.visualbert.compare import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("visualbert-vqa"))
