"""Predict NLVR2 with a finetuned VisualBERT (or its export, --inference_model): a CSV of `identifier,True|False`,
and accuracy and consistency."""

import json
import sys

from paddlenlp_ext import deploy
from paddlenlp_ext.data import load_tokenizer
from paddlenlp_ext.tasks.nlvr2 import task as nlvr2
from paddlenlp_ext.training import args as cli


def main(argv=None):
    parser = cli.base_parser(__doc__, training=False, batch_size=128)
    nlvr2.add_predict_args(parser)
    deploy.add_inference_model_arg(parser)
    nlvr2.add_data_args(parser)
    args = parser.parse_args(argv)
    deploy.use_inference_model(args)
    cli.setup(args)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    model = deploy.prediction_model(args, "nlvr2")
    data = nlvr2.dataset(args, tokenizer, args.split, model.config.visual_embedding_dim)
    identifiers, predictions = nlvr2.predict(model, data, tokenizer, args.batch_size, args.num_workers)
    metrics = nlvr2.accuracy_and_consistency(data.records, identifiers, predictions)
    path = nlvr2.write_predictions(args.output_dir, args.split, identifiers, predictions, metrics)
    print(json.dumps({"predictions": path, "examples": len(identifiers), **metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
