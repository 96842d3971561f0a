"""VQA v2: finetuning data, dev evaluation (soft score, and the official metric when annotations are given), and
prediction into an EvalAI result.json."""

import os

import numpy as np
import paddle
import paddle.nn.functional as F

from ...data import loading
from . import evaluation, results
from .answers import AnswerVocab, load_answer_vocab, soft_scores
from .dataset import VqaDataset

FEATURE_TYPE = "coco_detectron_fix_100"


def add_data_args(parser):
    """The data flags of finetuning and prediction alike."""
    parser.add_argument("--answers_file", help="answer vocabulary; default INPUT_DIR/extras/vocabs/answers_vqa.txt")
    parser.add_argument("--max_boxes", type=int, help="boxes per image (default: all 100 released)")


def add_train_args(parser):
    """Finetuning's splits, and the official files that add the official metric to the dev evaluation."""
    parser.add_argument("--train_split", default="trainval", help="imdb split to train on")
    parser.add_argument("--dev_split", default="minival", help="imdb split to evaluate on ('' for none)")
    parser.add_argument("--dev_questions", help="official questions json of the dev split, for the official metric")
    parser.add_argument("--dev_annotations", help="official annotations json of the dev split")


def add_predict_args(parser):
    """The split to answer and how many answers to keep per question."""
    parser.add_argument("--split", default="test", help="imdb split to answer")
    parser.add_argument("--top_k", type=int, default=1, help="also write result_topk.json with k answers and probs")


def answer_vocab(args) -> AnswerVocab:
    """The answer vocabulary of --answers_file, else the one in --input_dir."""
    path = args.answers_file or os.path.join(args.input_dir or "", "extras", "vocabs", "answers_vqa.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"answer vocabulary not found: {path} (set --answers_file)")
    return load_answer_vocab(path)


def dataset(args, tokenizer, split: str, dim: int, answers=None, pretraining=False) -> VqaDataset:
    """The VqaDataset of one imdb split, its feature files checked now (every one exists, the first is read), so a
    missing file, wrong folder or dim fails before training."""
    records = loading.load_records("vqa2", split, args.input_dir)
    data = VqaDataset(
        records,
        loading.features(args, FEATURE_TYPE, dim, args.max_boxes),
        tokenizer,
        answers=answers,
        pretraining=pretraining,
        max_seq_length=args.max_seq_length,
        seed=args.seed,
    )
    data.check_features()
    return data


def predict(model, data: VqaDataset, tokenizer, batch_size: int, num_workers: int, top_k: int = 1):
    """(question ids, top-k answer indices [N, k], their probabilities [N, k]); `<unk>` (index 0) never predicted.
    model: the eager head or an exported one (see loading.batched_outputs)."""
    question_ids, indices, probs = [], [], []
    # no labels: with them the eager head returns log-probabilities, an export the logits
    outputs = loading.batched_outputs(model, data, tokenizer, batch_size, num_workers, "predict", labels=False)
    for batch, output in outputs:
        logits = paddle.to_tensor(np.asarray(output["logits"], dtype="float32"))
        logits[:, 0] = -float("inf")  # <unk> is a placeholder for "not in the vocabulary", never an answer
        top = paddle.topk(F.softmax(logits, axis=-1), k=top_k, axis=-1)
        probs.append(top[0].numpy())
        indices.append(top[1].numpy())
        question_ids += loading.numpy_ids(batch["question_id"])
    return question_ids, np.concatenate(indices), np.concatenate(probs)


def evaluate(model, data: VqaDataset, tokenizer, args, official=None) -> dict:
    """vqa_score: mean soft score of the predicted answer (the official accuracy on 10-answer data); with
    `official` = (questions json, annotations json) also the official tool's overall accuracy."""
    question_ids, indices, _ = predict(model, data, tokenizer, args.batch_size, args.num_workers)
    human = {record["question_id"]: record["answers"] for record in data.records}
    vocab = data.answers
    soft = [soft_scores(human[qid], vocab)[index] for qid, index in zip(question_ids, indices[:, 0])]
    metrics = {"vqa_score": float(np.mean(soft))}
    if official is not None:
        predictions = {qid: vocab[index] for qid, index in zip(question_ids, indices[:, 0])}
        questions, annotations = _restrict(official, set(question_ids))
        metrics["official_overall"] = evaluation.evaluate(predictions, annotations, questions)["overall"]
    return metrics


def load_official(args):
    """(questions, annotations) json of the dev split when both flags are given, else None."""
    if not (args.dev_questions and args.dev_annotations):
        return None
    return evaluation.load_json(args.dev_questions), evaluation.load_json(args.dev_annotations)


def _restrict(official, question_ids: set):
    # The dev split (e.g. minival) is usually a subset of the official file (val): score the questions asked.
    questions, annotations = official
    missing = question_ids - {q["question_id"] for q in annotations["annotations"]}
    if missing:
        raise evaluation.EvaluationError(
            f"question {min(missing)} of the dev split is not in the official annotations"
        )
    return (
        {"questions": [q for q in questions["questions"] if q["question_id"] in question_ids]},
        {"annotations": [a for a in annotations["annotations"] if a["question_id"] in question_ids]},
    )


def write_predictions(output_dir: str, question_ids, indices, probs, vocab: AnswerVocab, top_k: int) -> str:
    """result.json and, with top_k > 1, result_topk.json, written as one (see results.write_result_files; a stale
    result_topk.json is removed); returns the result.json path."""
    answers = [vocab[i] for i in indices[:, 0]]
    topk = ([[vocab[i] for i in row] for row in indices], probs) if top_k > 1 else None
    return results.write_result_files(output_dir, results.make_results(question_ids, answers), question_ids, topk)
