"""Finetune VisualBERT on VQA v2 (paper: batch 64, lr 2e-5, 10 epochs, train on trainval, validate on minival)."""

import sys

from paddlenlp_ext.data import FEATURE_TYPES, load_tokenizer
from paddlenlp_ext.tasks.vqa import task as vqa
from paddlenlp_ext.tasks.vqa.answers import save_answer_vocab
from paddlenlp_ext.training import args as cli
from paddlenlp_ext.training.trainer import fit
from paddlenlp_ext.transformers import VisualBertForQuestionAnswering


def main(argv=None):
    parser = cli.base_parser(__doc__, task_name="vqa2", learning_rate=2e-5, batch_size=64, num_train_epochs=10)
    vqa.add_train_args(parser)
    vqa.add_data_args(parser)
    args = parser.parse_args(argv)
    cli.setup(args)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    answers = vqa.answer_vocab(args)
    defaults = {"vocab_size": len(tokenizer.vocab), "visual_embedding_dim": FEATURE_TYPES[vqa.FEATURE_TYPE].dim}
    model = cli.load_model(VisualBertForQuestionAnswering, args, defaults, tokenizer, num_labels=len(answers))
    dim = model.config.visual_embedding_dim
    train = vqa.dataset(args, tokenizer, args.train_split, dim, answers)
    evaluate = None
    if args.dev_split:
        dev = vqa.dataset(args, tokenizer, args.dev_split, dim, answers)
        official = vqa.load_official(args)
        evaluate = lambda m: vqa.evaluate(m, dev, tokenizer, args, official)  # noqa: E731
    fit(args, model, tokenizer, train, evaluate, metric="vqa_score", save_with=lambda f: save_answer_vocab(answers, f))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
