"""Predict VQA v2 answers with a finetuned VisualBERT (or its export, --inference_model): result.json for EvalAI
(every question once, never <unk>)."""

import json
import sys

from paddlenlp_ext import deploy
from paddlenlp_ext.data import load_tokenizer
from paddlenlp_ext.tasks.vqa import task as vqa
from paddlenlp_ext.training import args as cli


def main(argv=None):
    parser = cli.base_parser(__doc__, training=False, batch_size=128)
    vqa.add_predict_args(parser)
    deploy.add_inference_model_arg(parser)
    vqa.add_data_args(parser)
    args = parser.parse_args(argv)
    deploy.use_inference_model(args)
    cli.setup(args)
    tokenizer = load_tokenizer(args.tokenizer_name_or_path, args.model_name_or_path)
    answers = vqa.answer_vocab(args)
    model = deploy.prediction_model(args, "vqa")
    if model.config.num_labels != len(answers):
        raise ValueError(f"the model has {model.config.num_labels} answers, {answers.path} {len(answers)}")
    data = vqa.dataset(args, tokenizer, args.split, model.config.visual_embedding_dim, answers)
    question_ids, indices, probs = vqa.predict(model, data, tokenizer, args.batch_size, args.num_workers, args.top_k)
    path = vqa.write_predictions(args.output_dir, question_ids, indices, probs, answers, args.top_k)
    summary = {"result": path, "questions": len(question_ids)}
    if all(record.get("answers") for record in data.records):  # a split with human answers: score it too
        summary["vqa_score"] = vqa.evaluate(model, data, tokenizer, args)["vqa_score"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
