"""Predict VQA v2 answers with a finetuned VisualBERT: result.json for EvalAI (every question once, never <unk>)."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from paddlenlp_ext.tasks import vqa  # noqa: E402
from paddlenlp_ext.training import args as cli  # noqa: E402
from paddlenlp_ext.transformers import VisualBertForQuestionAnswering  # noqa: E402


def main(argv=None):
    parser = cli.base_parser(__doc__, training=False, batch_size=128)
    parser.add_argument("--split", default="test", help="imdb split to answer")
    parser.add_argument("--top_k", type=int, default=1, help="also write result_topk.json with k answers and probs")
    parser.add_argument("--answers_file", help="answer vocabulary; default INPUT_DIR/extras/vocabs/answers_vqa.txt")
    parser.add_argument("--max_boxes", type=int)
    args = parser.parse_args(argv)
    cli.setup(args)
    tokenizer = cli.load_tokenizer(args)
    answers = vqa.answer_vocab(args)
    model = VisualBertForQuestionAnswering.from_pretrained(args.model_name_or_path)
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
