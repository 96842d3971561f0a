"""VQA result files: the EvalAI submission list and an optional top-k file, validated and written atomically.

EvalAI expects ``[{"question_id": int, "answer": str}, ...]`` with every question of the split exactly once.
"""

import contextlib
import json
import numbers
import os

from ...files import atomic_file
from .answers import UNK


class ResultsError(ValueError):
    """A result list that does not match its split, or an entry of the wrong form."""


def as_question_id(value, where: str) -> int:
    """Return ``value`` as a python int; numpy integers pass, bools, floats and strings raise naming ``where``."""
    # bool is an Integral too, but True as a question id is always a bug upstream.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ResultsError(f"{where}: question_id {value!r} is not an int")
    return int(value)


def parse_results(results) -> dict[int, str]:
    """Turn an EvalAI result list into ``{question_id: answer}`` in list order; no id may appear twice."""
    if not isinstance(results, list):
        raise ResultsError(f"results must be a list of {{question_id, answer}} objects, got {type(results).__name__}")
    predictions = {}
    for index, entry in enumerate(results):
        if not isinstance(entry, dict) or "question_id" not in entry or "answer" not in entry:
            raise ResultsError(f"result entry {index} is not an object with question_id and answer: {entry!r}")
        question_id = as_question_id(entry["question_id"], f"result entry {index}")
        answer = entry["answer"]
        if not isinstance(answer, str):
            raise ResultsError(f"question {question_id}: answer {answer!r} is not a str")
        if question_id in predictions:
            raise ResultsError(f"question {question_id} is answered more than once")
        predictions[question_id] = answer
    return predictions


def check_question_ids(answered, expected, expected_name: str = "the split") -> None:
    """Raise naming the first question of ``expected`` not in ``answered``, or the first answered id not expected."""
    answered = set(answered)
    expected = set(expected)
    missing = expected - answered
    if missing:
        raise ResultsError(
            f"question {min(missing)} of {expected_name} is not answered ({len(missing)} of {len(expected)} missing)"
        )
    extra = answered - expected
    if extra:
        raise ResultsError(f"question {min(extra)} is answered but is not in {expected_name} ({len(extra)} such ids)")


def validate_results(results, question_ids) -> list[dict]:
    """Check that ``results`` answers every id of ``question_ids`` once with a real answer; return it with int ids."""
    predictions = parse_results(results)
    for question_id, answer in predictions.items():
        if not answer.strip():
            raise ResultsError(f"question {question_id}: empty answer")
        if answer.strip() == UNK:
            raise ResultsError(f"question {question_id}: answer is {UNK}")
    expected = [as_question_id(question_id, "question_ids") for question_id in question_ids]
    check_question_ids(predictions, expected)
    return [{"question_id": question_id, "answer": answer} for question_id, answer in predictions.items()]


def make_results(question_ids, answers) -> list[dict]:
    """Pair predicted answers with their question ids as an EvalAI result list."""
    question_ids = list(question_ids)
    answers = list(answers)
    if len(question_ids) != len(answers):
        raise ResultsError(f"{len(question_ids)} question ids but {len(answers)} answers")
    return [{"question_id": question_id, "answer": answer} for question_id, answer in zip(question_ids, answers)]


def write_results(path, results, question_ids) -> None:
    """Validate ``results`` against the split's ``question_ids`` and write them atomically to ``path``."""
    results = validate_results(results, question_ids)
    with atomic_file(path) as f:
        json.dump(results, f)


def write_topk(path, question_ids, answers_topk, probs_topk) -> None:
    """Write ``[{"question_id", "answers": [k str], "probs": [k float]}, ...]`` atomically to ``path``."""
    entries = topk_entries(question_ids, answers_topk, probs_topk)
    with atomic_file(path) as f:
        json.dump(entries, f)


def topk_entries(question_ids, answers_topk, probs_topk) -> list[dict]:
    """Validate top-k rows into ``[{"question_id", "answers": [k str], "probs": [k float]}, ...]``."""
    question_ids = list(question_ids)
    answers_topk = list(answers_topk)
    probs_topk = list(probs_topk)
    if not len(question_ids) == len(answers_topk) == len(probs_topk):
        raise ResultsError(
            f"{len(question_ids)} question ids, {len(answers_topk)} answer rows and {len(probs_topk)} prob rows"
        )
    entries = []
    seen = set()
    for index, (question_id, answers, probs) in enumerate(zip(question_ids, answers_topk, probs_topk)):
        question_id = as_question_id(question_id, f"top-k row {index}")
        if question_id in seen:
            raise ResultsError(f"question {question_id} appears more than once in the top-k rows")
        seen.add(question_id)
        answers = list(answers)
        # float() turns numpy scalars into python floats, which json can write.
        probs = [float(prob) for prob in probs]
        if not answers or len(answers) != len(probs):
            raise ResultsError(f"question {question_id}: {len(answers)} answers but {len(probs)} probs")
        if not all(isinstance(answer, str) for answer in answers):
            raise ResultsError(f"question {question_id}: answers must be str, got {answers!r}")
        entries.append({"question_id": question_id, "answers": answers, "probs": probs})
    return entries


def write_result_files(folder, results, question_ids, topk=None) -> str:
    """One prediction's ``result.json`` and, given ``topk = (answers_topk, probs_topk)``, ``result_topk.json``;
    returns the result.json path.

    Both are validated, then written, before either replaces a file of an earlier run; result.json is renamed into
    place last. Without ``topk`` an earlier result_topk.json is removed first, so the folder never pairs this
    result.json with another run's top-k.
    """
    results = validate_results(results, question_ids)
    entries = None if topk is None else topk_entries(question_ids, *topk)
    path, topk_path = os.path.join(folder, "result.json"), os.path.join(folder, "result_topk.json")
    with contextlib.ExitStack() as files:  # closes (renames) in reverse: result_topk.json, then result.json
        result_file = files.enter_context(atomic_file(path))
        if entries is None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(topk_path)
        else:
            json.dump(entries, files.enter_context(atomic_file(topk_path)))
        json.dump(results, result_file)
    return path
