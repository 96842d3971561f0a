"""Answer one question about one image with a finetuned VisualBERT: a model folder or an exported one.

Prints the top-k answers, best first, one per line: `probability  answer`.
"""

import argparse
import sys

from paddlenlp_ext.deploy.predictor import VqaPredictor, load_features
from paddlenlp_ext.runtime import configure_cpu
from paddlenlp_ext.training.args import run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved, converted or exported (export.json) model folder")
    parser.add_argument("--features", required=True, help=".npy of the image's region features [boxes, dim]")
    parser.add_argument("--question", required=True)
    parser.add_argument("--answers_file", help="answer vocabulary; default MODEL/answers_vqa.txt")
    parser.add_argument("--tokenizer", help="vocab.txt, a folder with one, or a PaddleNLP name; default the model's")
    parser.add_argument("--top_k", type=int, default=5)
    args = parser.parse_args(argv)
    features = load_features(args.features)  # a bad file fails before the model loads
    configure_cpu()
    predictor = VqaPredictor.from_pretrained(args.model, answers_file=args.answers_file, tokenizer=args.tokenizer)
    for answer, probability in predictor(args.question, features, top_k=args.top_k):
        print(f"{probability:.3f}  {answer}")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
