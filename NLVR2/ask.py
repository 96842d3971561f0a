"""Say whether a statement about a pair of images is true, with a finetuned VisualBERT: a model folder or an exported
one.

Prints `True probability` or `False probability` (the probability of that verdict).
"""

import argparse
import sys

from paddlenlp_ext.deploy.predictor import Nlvr2Predictor, load_features
from paddlenlp_ext.runtime import configure_cpu
from paddlenlp_ext.training.args import run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved, converted or exported (export.json) model folder")
    parser.add_argument("--left", required=True, help=".npy of the left image's region features [boxes, dim]")
    parser.add_argument("--right", required=True, help=".npy of the right image's region features [boxes, dim]")
    parser.add_argument("--statement", required=True)
    parser.add_argument("--tokenizer", help="vocab.txt, a folder with one, or a PaddleNLP name; default the model's")
    args = parser.parse_args(argv)
    left, right = load_features(args.left), load_features(args.right)  # a bad file fails before the model loads
    configure_cpu()
    predictor = Nlvr2Predictor.from_pretrained(args.model, tokenizer=args.tokenizer)
    verdict, probability = predictor(args.statement, left, right)
    print(f"{verdict} {probability:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
