"""The official VQA accuracy (GT-Vision-Lab/VQA ``vqaEval.py``), reimplemented to give the same numbers.

A prediction scores the mean, over the 10 ways of leaving one human answer out, of min(1, matches among the other
9 / 3); answers are normalised first unless all 10 humans agree. Overall, per answer type and per question type
accuracies are 100 x the mean, rounded to 2 decimals. Pure python, so it runs without paddle.
"""

import functools
import json
import re
from collections.abc import Mapping, Sequence

from .results import as_question_id, check_question_ids, parse_results

# Copied verbatim from the official table, quirks included: the capitalised keys never match (answers are lowercased
# first) and "somebody'd" maps to "somebodyd". Changing either would change scores.
CONTRACTIONS = {
    "aint": "ain't",
    "arent": "aren't",
    "cant": "can't",
    "couldve": "could've",
    "couldnt": "couldn't",
    "couldn'tve": "couldn't've",
    "couldnt've": "couldn't've",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hadnt": "hadn't",
    "hadnt've": "hadn't've",
    "hadn'tve": "hadn't've",
    "hasnt": "hasn't",
    "havent": "haven't",
    "hed": "he'd",
    "hed've": "he'd've",
    "he'dve": "he'd've",
    "hes": "he's",
    "howd": "how'd",
    "howll": "how'll",
    "hows": "how's",
    "Id've": "I'd've",
    "I'dve": "I'd've",
    "Im": "I'm",
    "Ive": "I've",
    "isnt": "isn't",
    "itd": "it'd",
    "itd've": "it'd've",
    "it'dve": "it'd've",
    "itll": "it'll",
    "let's": "let's",
    "maam": "ma'am",
    "mightnt": "mightn't",
    "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've",
    "mightve": "might've",
    "mustnt": "mustn't",
    "mustve": "must've",
    "neednt": "needn't",
    "notve": "not've",
    "oclock": "o'clock",
    "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at",
    "shant": "shan't",
    "shed've": "she'd've",
    "she'dve": "she'd've",
    "she's": "she's",
    "shouldve": "should've",
    "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've",
    "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll",
    "somebodys": "somebody's",
    "someoned": "someone'd",
    "someoned've": "someone'd've",
    "someone'dve": "someone'd've",
    "someonell": "someone'll",
    "someones": "someone's",
    "somethingd": "something'd",
    "somethingd've": "something'd've",
    "something'dve": "something'd've",
    "somethingll": "something'll",
    "thats": "that's",
    "thered": "there'd",
    "thered've": "there'd've",
    "there'dve": "there'd've",
    "therere": "there're",
    "theres": "there's",
    "theyd": "they'd",
    "theyd've": "they'd've",
    "they'dve": "they'd've",
    "theyll": "they'll",
    "theyre": "they're",
    "theyve": "they've",
    "twas": "'twas",
    "wasnt": "wasn't",
    "wed've": "we'd've",
    "we'dve": "we'd've",
    "weve": "we've",
    "werent": "weren't",
    "whatll": "what'll",
    "whatre": "what're",
    "whats": "what's",
    "whatve": "what've",
    "whens": "when's",
    "whered": "where'd",
    "wheres": "where's",
    "whereve": "where've",
    "whod": "who'd",
    "whod've": "who'd've",
    "who'dve": "who'd've",
    "wholl": "who'll",
    "whos": "who's",
    "whove": "who've",
    "whyll": "why'll",
    "whyre": "why're",
    "whys": "why's",
    "wont": "won't",
    "wouldve": "would've",
    "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've",
    "yall": "y'all",
    "yall'll": "y'all'll",
    "y'allll": "y'all'll",
    "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've",
    "youd": "you'd",
    "youd've": "you'd've",
    "you'dve": "you'd've",
    "youll": "you'll",
    "youre": "you're",
    "youve": "you've",
}
NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = frozenset({"a", "an", "the"})
# Apostrophes (the contractions need them), colons and periods are not in the list; periods are handled apart.
PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')

# "(?!<=\d)" is a lookahead (the official tool's typo for a lookbehind) that never fires before a period, so the
# pattern drops every period not followed by a digit: "2.5" keeps its period, "st. louis" and "5." lose theirs.
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(\,)(\d)")
# The official tool passes re.UNICODE (= 32) where re.sub takes ``count``, so it drops at most 32 periods.
_PERIOD_STRIP_COUNT = 32


class EvaluationError(ValueError):
    """Annotations, questions or predictions that cannot be scored together."""


def process_punctuation(text: str) -> str:
    """Remove punctuation next to a space (or all of it if a digit-comma-digit occurs), else turn it into a space."""
    # Every decision looks at the input text, not at the partly processed one, as the official tool does.
    remove_all = _COMMA_STRIP.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if remove_all or mark + " " in text or " " + mark in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD_STRIP.sub("", out, count=_PERIOD_STRIP_COUNT)


def process_digit_article(text: str) -> str:
    """Lowercase, map number words to digits, drop articles, expand contractions and rejoin with single spaces."""
    words = [NUMBER_WORDS.get(word, word) for word in text.lower().split()]
    return " ".join(CONTRACTIONS.get(word, word) for word in words if word not in ARTICLES)


# Human answers repeat heavily across questions, so caching makes scoring a full split several times faster.
@functools.lru_cache(maxsize=1 << 18)
def normalize_answer(text: str) -> str:
    """The official normalisation of one answer: punctuation, then digits, articles and contractions."""
    return process_digit_article(process_punctuation(text))


def _strip_whitespace(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def answer_accuracy(prediction: str, gt_answers: Sequence[str]) -> float:
    """Official accuracy in [0, 1] of one predicted answer against the human answers of its question."""
    if len(gt_answers) == 0:
        raise EvaluationError("a question needs at least one human answer to be scored")
    gt_answers = [_strip_whitespace(answer) for answer in gt_answers]
    prediction = _strip_whitespace(prediction)
    # When all humans agree the official tool compares without normalising, so "Yes" does not match ten "yes".
    if len(set(gt_answers)) > 1:
        gt_answers = [normalize_answer(answer) for answer in gt_answers]
        prediction = normalize_answer(prediction)
    matches = sum(answer == prediction for answer in gt_answers)
    # Leaving out one human answer removes one match exactly when that answer equals the prediction.
    scores = [min(1, (matches - (answer == prediction)) / 3) for answer in gt_answers]
    return sum(scores) / len(scores)


def mean_answer_accuracy(predictions: Sequence[str], gt_answers: Sequence[Sequence[str]]) -> float:
    """Mean official accuracy in [0, 1] of predicted answer strings, one per question, against its human answers."""
    if len(predictions) != len(gt_answers):
        raise EvaluationError(f"{len(predictions)} predictions but {len(gt_answers)} lists of human answers")
    if len(predictions) == 0:
        raise EvaluationError("no predictions to score")
    return sum(answer_accuracy(p, answers) for p, answers in zip(predictions, gt_answers)) / len(predictions)


def _index_annotations(annotations) -> dict[int, dict]:
    """``{question_id: annotation}`` in file order, checking the fields the metric reads."""
    if not isinstance(annotations, dict) or not isinstance(annotations.get("annotations"), list):
        raise EvaluationError('annotations json must be an object with an "annotations" list')
    by_id = {}
    for index, annotation in enumerate(annotations["annotations"]):
        for key in ("question_id", "question_type", "answer_type", "answers"):
            if not isinstance(annotation, dict) or key not in annotation:
                raise EvaluationError(f"annotation {index} has no {key!r}")
        question_id = as_question_id(annotation["question_id"], f"annotation {index}")
        answers = annotation["answers"]
        if not answers or not all(
            isinstance(answer, dict) and isinstance(answer.get("answer"), str) for answer in answers
        ):
            raise EvaluationError(
                f"annotation of question {question_id}: answers must be a non-empty list of {{answer}}"
            )
        if question_id in by_id:
            raise EvaluationError(f"question {question_id} has more than one annotation")
        by_id[question_id] = annotation
    return by_id


def _question_ids(questions) -> list[int]:
    if not isinstance(questions, dict) or not isinstance(questions.get("questions"), list):
        raise EvaluationError('questions json must be an object with a "questions" list')
    question_ids = []
    for index, question in enumerate(questions["questions"]):
        if not isinstance(question, dict) or "question_id" not in question:
            raise EvaluationError(f"question entry {index} has no 'question_id'")
        question_ids.append(as_question_id(question["question_id"], f"question entry {index}"))
    return question_ids


def _percent(scores: list[float]) -> float:
    # Same operation order as the official tool, so the float rounds to the same 2 decimals.
    return round(100 * sum(scores) / len(scores), 2)


def evaluate(predictions: Mapping[int, str], annotations: dict, questions: dict) -> dict:
    """Score ``{question_id: answer}`` against official annotations and questions json (already loaded).

    Every annotated question must be answered and every answered id annotated. Returns
    ``{"overall": float, "perAnswerType": {type: float}, "perQuestionType": {type: float}}`` in percent, 2 decimals.
    """
    by_id = _index_annotations(annotations)
    question_ids = set(_question_ids(questions))
    if question_ids != by_id.keys():
        unannotated = question_ids - by_id.keys()
        if unannotated:
            raise EvaluationError(f"question {min(unannotated)} of the questions json has no annotation")
        raise EvaluationError(
            f"question {min(by_id.keys() - question_ids)} is annotated but not in the questions json"
        )
    answers = {}
    for question_id, answer in predictions.items():
        question_id = as_question_id(question_id, "predictions")
        if not isinstance(answer, str):
            raise EvaluationError(f"question {question_id}: answer {answer!r} is not a str")
        answers[question_id] = answer
    check_question_ids(answers, by_id, "the annotations")

    # Annotation order, as the official tool iterates, keeps float sums (and so the rounding) identical.
    overall = []
    per_answer_type = {}
    per_question_type = {}
    for question_id, annotation in by_id.items():
        score = answer_accuracy(answers[question_id], [answer["answer"] for answer in annotation["answers"]])
        overall.append(score)
        per_answer_type.setdefault(annotation["answer_type"], []).append(score)
        per_question_type.setdefault(annotation["question_type"], []).append(score)
    return {
        "overall": _percent(overall),
        "perAnswerType": {name: _percent(scores) for name, scores in per_answer_type.items()},
        "perQuestionType": {name: _percent(scores) for name, scores in per_question_type.items()},
    }


def load_json(path):
    """``json.load`` of ``path``, with the path in the error when the file is not valid json."""
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise EvaluationError(f"{path} is not valid json: {err}") from None


def evaluate_files(questions_path, annotations_path, result_path) -> dict:
    """Score an EvalAI result file against official questions and annotations files; see :func:`evaluate`."""
    questions = load_json(questions_path)
    annotations = load_json(annotations_path)
    predictions = parse_results(load_json(result_path))
    return evaluate(predictions, annotations, questions)
