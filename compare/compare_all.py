"""Compare all nine VisualBERT checkpoints with HF transformers and write a JSON report."""

import sys

from alignment import main_all

if __name__ == "__main__":
    sys.exit(main_all())
