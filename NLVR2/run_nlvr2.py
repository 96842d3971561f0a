"""Finetune VisualBERT on NLVR2 (paper: batch 64, lr 2e-5, 10 epochs)."""

import sys

from paddlenlp_ext.data import FEATURE_TYPES, load_tokenizer
from paddlenlp_ext.tasks.nlvr2 import task as nlvr2
from paddlenlp_ext.training import args as cli
from paddlenlp_ext.training.trainer import fit
from paddlenlp_ext.transformers import VisualBertForVisualReasoning


def main(argv=None):
    parser = cli.base_parser(__doc__, task_name="nlvr2", learning_rate=2e-5, batch_size=64, num_train_epochs=10)
    nlvr2.add_train_args(parser)
    nlvr2.add_data_args(parser)
    args = parser.parse_args(argv)
    cli.setup(args)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    defaults = {"vocab_size": len(tokenizer.vocab), "visual_embedding_dim": FEATURE_TYPES[nlvr2.FEATURE_TYPE].dim}
    model = cli.load_model(VisualBertForVisualReasoning, args, defaults, tokenizer, num_labels=2)
    dim = model.config.visual_embedding_dim
    train = nlvr2.dataset(args, tokenizer, args.train_split, dim)
    evaluate = None
    if args.dev_split:
        dev = nlvr2.dataset(args, tokenizer, args.dev_split, dim)
        evaluate = lambda m: nlvr2.evaluate(m, dev, tokenizer, args)  # noqa: E731
    fit(args, model, tokenizer, train, evaluate, metric="accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
