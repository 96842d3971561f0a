"""Predict NLVR2 with a finetuned VisualBERT: a CSV of `identifier,True|False`, and accuracy and consistency."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from paddlenlp_ext.tasks import nlvr2  # noqa: E402
from paddlenlp_ext.training import args as cli  # noqa: E402
from paddlenlp_ext.transformers import VisualBertForVisualReasoning  # noqa: E402


def main(argv=None):
    parser = cli.base_parser(__doc__, training=False, batch_size=128)
    parser.add_argument("--split", default="dev", help="dev or test1")
    parser.add_argument("--max_boxes", type=int)
    args = parser.parse_args(argv)
    cli.setup(args)
    tokenizer = cli.load_tokenizer(args)
    model = VisualBertForVisualReasoning.from_pretrained(args.model_name_or_path)
    data = nlvr2.dataset(args, tokenizer, args.split, model.config.visual_embedding_dim)
    identifiers, predictions = nlvr2.predict(model, data, tokenizer, args.batch_size, args.num_workers)
    path = os.path.join(args.output_dir, f"predictions_{args.split}.csv")
    nlvr2.write_predictions(path, identifiers, predictions)
    metrics = nlvr2.accuracy_and_consistency(data.records, identifiers, predictions)
    with open(os.path.join(args.output_dir, f"metrics_{args.split}.json"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    print(json.dumps({"predictions": path, "examples": len(identifiers), **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
