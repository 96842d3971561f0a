"""Compare one VisualBERT checkpoint between HF transformers and its Paddle conversion (see alignment.py)."""

import sys

from alignment import main

if __name__ == "__main__":
    sys.exit(main("visualbert-vqa-coco-pre"))
