"""Convert VisualBERT checkpoints between HF transformers and PaddleNLP.

python checkpoint/convert.py                                  # the nine under checkpoint/uclanlp/<name>
python checkpoint/convert.py --src HF_DIR --dst DIR           # one HF VisualBERT checkpoint
python checkpoint/convert.py --src BERT_DIR --dst DIR --visual_embedding_dim 2048   # BERT -> pretraining init
python checkpoint/convert.py --to_hf --src PADDLE_DIR --dst HF_DIR
"""

import argparse
import os
import sys

from paddlenlp_ext.paths import CHECKPOINT_HOME, REPO_ROOT
from paddlenlp_ext.transformers.visualbert import convert
from paddlenlp_ext.transformers.visualbert.configuration import PRETRAINED_CHECKPOINTS

HF_HOME = os.path.join(REPO_ROOT, "checkpoint", "uclanlp")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", help="source folder; without it, every checkpoint/uclanlp/<name> found")
    parser.add_argument("--dst", help="destination folder (replaced only when the conversion succeeds)")
    parser.add_argument("--to_hf", action="store_true", help="Paddle -> HF transformers instead of HF -> Paddle")
    parser.add_argument("--visual_embedding_dim", type=int, help="for a plain BERT source: the region feature size")
    parser.add_argument("--seed", type=int, default=0, help="for a plain BERT source: seed of the fresh parameters")
    args = parser.parse_args(argv)
    try:
        if args.src is None:
            return convert_all()
        if args.dst is None:
            parser.error("--dst is required with --src")
        if args.to_hf:
            arch = convert.convert_paddle_to_hf(args.src, args.dst)
        elif args.visual_embedding_dim is not None:
            fresh = convert.convert_bert_checkpoint(args.src, args.dst, args.visual_embedding_dim, args.seed)
            arch = "VisualBertForPreTraining"
            print(f"initialised fresh: {', '.join(fresh)}")
        else:
            arch = convert.convert_hf_checkpoint(args.src, args.dst)
    except convert.ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.src} -> {args.dst} ({arch})")
    return 0


def convert_all():
    missing = []
    for name in PRETRAINED_CHECKPOINTS:
        src = os.path.join(HF_HOME, name)
        if not os.path.isdir(src):
            missing.append(name)
            continue
        dst = os.path.join(CHECKPOINT_HOME, name)
        print(f"{name}: {convert.convert_hf_checkpoint(src, dst)} -> {dst}")
    if missing:
        print(f"not found under {HF_HOME}: {', '.join(missing)}", file=sys.stderr)
    return 2 if len(missing) == len(PRETRAINED_CHECKPOINTS) else 0


if __name__ == "__main__":
    sys.exit(main())
