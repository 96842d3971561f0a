"""Pretrain VisualBERT: masked LM + sentence-image matching on COCO captions, or task pretraining on VQA2 (masked
LM on question + answer) or NLVR2 (masked LM + the sentence-image head on the truth label). Paper: lr 5e-5."""

import sys

from paddlenlp_ext.data import FEATURE_TYPES, load_tokenizer
from paddlenlp_ext.tasks.pretrain import task as pretrain
from paddlenlp_ext.training import args as cli
from paddlenlp_ext.training.trainer import fit
from paddlenlp_ext.transformers import VisualBertForPreTraining


def main(argv=None):
    parser = cli.base_parser(__doc__, task_name="pretrain", learning_rate=5e-5, batch_size=64, num_train_epochs=10)
    pretrain.add_args(parser)
    args = parser.parse_args(argv)
    cli.setup(args)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    feature_type = args.feature_type or pretrain.DATASETS[args.dataset][1]
    defaults = {"vocab_size": len(tokenizer.vocab), "visual_embedding_dim": FEATURE_TYPES[feature_type].dim}
    model = cli.load_model(VisualBertForPreTraining, args, defaults, tokenizer)
    dim = model.config.visual_embedding_dim
    train = pretrain.dataset(args, tokenizer, args.train_splits or pretrain.default_splits(args.dataset), dim)
    evaluate = None
    if args.dev_split:
        dev = pretrain.dataset(args, tokenizer, [args.dev_split], dim)
        evaluate = lambda m: pretrain.evaluate(m, dev, tokenizer, args)  # noqa: E731
    fit(args, model, tokenizer, train, evaluate, metric="mlm_accuracy")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
