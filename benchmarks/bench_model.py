"""Training step, inference forward, peak memory and MFU of this project's VisualBERT against HF transformers', side by
side on this machine with the same thread count, config, seed and inputs; prints the table and writes a JSON report.

python benchmarks/bench_model.py                      # BERT-base, batch 8, text 32, 100 boxes x 2048, every core
python benchmarks/bench_model.py --threads 1 --rounds 5
python benchmarks/bench_model.py --batch_size 64 --text_length 20 --phases inference   # VQA questions/s
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from paddlenlp_ext.transformers.visualbert.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
