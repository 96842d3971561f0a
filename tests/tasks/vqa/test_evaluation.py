"""The official VQA metric: normalisation, leave-one-out scoring, aggregation, and the VQA2/evaluate.py CLI.

Expected values are worked by hand from the rules of GT-Vision-Lab/VQA vqaEval.py.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.tasks.vqa.evaluation import (
    EvaluationError,
    answer_accuracy,
    evaluate,
    mean_answer_accuracy,
    normalize_answer,
    process_digit_article,
    process_punctuation,
)
from paddlenlp_ext.tasks.vqa.results import ResultsError

CLI = os.path.join(REPO_ROOT, "VQA2", "evaluate.py")


@pytest.mark.parametrize(
    "text, expected",
    [
        # A mark inside a word becomes a space...
        ("t-shirt", "t shirt"),
        ("left/right", "left right"),
        # ...but once that mark also stands next to a space anywhere, every copy of it is removed.
        ("t-shirt - red", "tshirt  red"),
        ("yes !", "yes "),
        # Marks are decided one by one: "-" sits next to a space, "/" does not.
        ("a/b - c", "a b  c"),
        # A digit-comma-digit anywhere removes every mark instead of spacing it.
        ("1,000", "1000"),
        ("1,000 (about)", "1000 about"),
        ("red,white", "red white"),
        # Periods go unless a digit follows; the apostrophe is not punctuation here.
        ("2.5", "2.5"),
        (".5", ".5"),
        ("st. louis", "st louis"),
        ("5.", "5"),
        ("o.k.", "ok"),
        ("dog's", "dog's"),
        # The official tool passes re.UNICODE (32) as re.sub's count, so only 32 periods go.
        ("x" + "." * 40, "x" + "." * 8),
    ],
)
def test_process_punctuation(text, expected):
    assert process_punctuation(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Two Dogs", "2 dogs"),
        ("none", "0"),
        ("ten", "10"),
        ("the red one", "red 1"),
        ("a", ""),
        ("an apple", "apple"),
        ("dont know", "don't know"),
        ("whats that", "what's that"),
        ("cant", "can't"),
        # The official table keys "Im" capitalised, but the text is lowercased first, so it never applies.
        ("Im", "im"),
        ("  many \t spaces ", "many spaces"),
    ],
)
def test_process_digit_article(text, expected):
    assert process_digit_article(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Dog's toy.", "dog's toy"),
        ("Two, maybe three!", "2 maybe 3"),
        ("t-shirt - red", "tshirt red"),
        ("dont", "don't"),
        ("1,000", "1000"),
    ],
)
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    "count, expected",
    [
        # With k of 10 humans giving the answer, k leave-one-out subsets hold k-1 matches and 10-k hold k.
        (0, 0.0),
        (1, 0.3),  # (1*0 + 9*(1/3)) / 10
        (2, 0.6),  # (2*(1/3) + 8*(2/3)) / 10
        (3, 0.9),  # (3*(2/3) + 7*1) / 10
        (4, 1.0),  # (4*1 + 6*1) / 10
        (9, 1.0),
    ],
)
def test_answer_accuracy_leave_one_out(count, expected):
    gt_answers = ["red"] * count + ["blue"] * (10 - count)
    assert answer_accuracy("red", gt_answers) == pytest.approx(expected, abs=1e-12)


def test_answer_accuracy_normalises_when_humans_disagree():
    # "two", "2" and "2 " all normalise to "2": three matches, as is "Two." from the model.
    gt_answers = ["two", "2", "2 "] + ["3"] * 7
    assert answer_accuracy("Two.", gt_answers) == pytest.approx(0.9)
    assert answer_accuracy("yes", ["yes"] * 9 + ["no"]) == pytest.approx(1.0)
    assert answer_accuracy("Yes", ["yes"] * 9 + ["no"]) == pytest.approx(1.0)


def test_answer_accuracy_no_normalisation_when_all_humans_agree():
    assert answer_accuracy("yes", ["yes"] * 10) == 1.0
    # Only newlines, tabs and outer spaces are stripped, so case and punctuation now decide.
    assert answer_accuracy(" yes\n", ["yes"] * 10) == 1.0
    assert answer_accuracy("Yes", ["yes"] * 10) == 0.0
    assert answer_accuracy("yes.", ["yes"] * 10) == 0.0
    # The human answers are stripped before the "all identical" check too.
    assert answer_accuracy("Yes", ["yes"] * 9 + ["yes\t"]) == 0.0


def test_mean_answer_accuracy():
    predictions = ["two", "red"]
    gt_answers = [["2"] + ["3"] * 9, ["red"] * 2 + ["blue"] * 8]
    assert mean_answer_accuracy(predictions, gt_answers) == pytest.approx((0.3 + 0.6) / 2)
    with pytest.raises(EvaluationError, match="2 predictions but 1"):
        mean_answer_accuracy(predictions, gt_answers[:1])


# question_id: (answer_type, question_type, human answers, prediction, hand-worked accuracy)
CASES = {
    11: ("yes/no", "is the", ["yes"] * 10, "yes", 1.0),
    12: ("yes/no", "is the", ["no"] * 10, "no", 1.0),
    13: ("yes/no", "is there", ["yes"] * 10, "no", 0.0),
    14: ("number", "how many", ["2"] + ["3"] * 9, "two", 0.3),
    15: ("other", "what color", ["red"] * 2 + ["blue"] * 8, "Red.", 0.6),
    16: ("other", "what color", ["blue"] * 10, "Blue", 0.0),
}
EXPECTED = {
    "overall": 48.33,  # 100 * (1 + 1 + 0 + 0.3 + 0.6 + 0) / 6 = 48.333...
    "perAnswerType": {"yes/no": 66.67, "number": 30.0, "other": 30.0},  # 66.666... rounds up, not down
    "perQuestionType": {"is the": 100.0, "is there": 0.0, "how many": 30.0, "what color": 30.0},
}


def official_jsons():
    questions = {"questions": [{"image_id": 7, "question": "?", "question_id": qid} for qid in CASES]}
    annotations = {
        "annotations": [
            {
                "question_id": qid,
                "image_id": 7,
                "question_type": question_type,
                "answer_type": answer_type,
                "multiple_choice_answer": answers[0],
                "answers": [
                    {"answer": answer, "answer_confidence": "yes", "answer_id": index + 1}
                    for index, answer in enumerate(answers)
                ],
            }
            for qid, (answer_type, question_type, answers, _, _) in CASES.items()
        ]
    }
    predictions = {qid: case[3] for qid, case in CASES.items()}
    return questions, annotations, predictions


def test_cases_are_worked_right():
    for _, _, answers, prediction, accuracy in CASES.values():
        assert answer_accuracy(prediction, answers) == pytest.approx(accuracy)


def test_evaluate_aggregates_and_rounds():
    questions, annotations, predictions = official_jsons()
    scores = evaluate(predictions, annotations, questions)
    assert scores == EXPECTED
    assert list(scores) == ["overall", "perAnswerType", "perQuestionType"]


def test_evaluate_leaves_annotations_unchanged():
    questions, annotations, predictions = official_jsons()
    before = json.dumps(annotations)
    evaluate(predictions, annotations, questions)
    assert json.dumps(annotations) == before


def test_evaluate_requires_every_question_answered():
    questions, annotations, predictions = official_jsons()
    del predictions[14]
    with pytest.raises(ResultsError, match="question 14 of the annotations is not answered"):
        evaluate(predictions, annotations, questions)


def test_evaluate_rejects_unknown_question():
    questions, annotations, predictions = official_jsons()
    predictions[99] = "yes"
    with pytest.raises(ResultsError, match="question 99 is answered but is not in the annotations"):
        evaluate(predictions, annotations, questions)


def test_evaluate_rejects_questions_annotations_mismatch():
    questions, annotations, predictions = official_jsons()
    questions["questions"].append({"image_id": 7, "question": "?", "question_id": 42})
    with pytest.raises(EvaluationError, match="question 42 of the questions json has no annotation"):
        evaluate(predictions, annotations, questions)


def write_triple(folder, predictions=None):
    questions, annotations, default_predictions = official_jsons()
    predictions = default_predictions if predictions is None else predictions
    paths = {name: folder / f"{name}.json" for name in ("questions", "annotations", "result")}
    paths["questions"].write_text(json.dumps(questions))
    paths["annotations"].write_text(json.dumps(annotations))
    paths["result"].write_text(json.dumps([{"question_id": qid, "answer": a} for qid, a in predictions.items()]))
    return paths


def run_cli(paths, cwd):
    args = [sys.executable, str(CLI)] + [f"--{name}={path}" for name, path in paths.items()]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_cli_end_to_end_from_another_folder(tmp_path):
    paths = write_triple(tmp_path)
    done = run_cli(paths, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == EXPECTED


def test_cli_unanswered_question_fails_with_one_line(tmp_path):
    _, _, predictions = official_jsons()
    del predictions[15]
    done = run_cli(write_triple(tmp_path, predictions), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    # Importing the package may log to stderr before the CLI runs; the CLI's own report is one last line.
    error_lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [done.stderr.splitlines()[-1]]
    assert "question 15 of the annotations is not answered" in error_lines[0]


@pytest.fixture(scope="module")
def cli_main():
    spec = importlib.util.spec_from_file_location("vqa2_evaluate", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_invalid_json_names_the_file(tmp_path, cli_main, capsys):
    paths = write_triple(tmp_path)
    paths["result"].write_text('[{"question_id": 11, "answer": "yes"')
    assert cli_main([f"--{name}={path}" for name, path in paths.items()]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(paths["result"]) in captured.err
    assert captured.err.count("\n") == 1


def test_cli_missing_file_names_the_file(tmp_path, cli_main, capsys):
    paths = write_triple(tmp_path)
    paths["annotations"] = tmp_path / "no_such_annotations.json"
    assert cli_main([f"--{name}={path}" for name, path in paths.items()]) == 2
    captured = capsys.readouterr()
    assert "no_such_annotations.json" in captured.err
    assert captured.err.count("\n") == 1


def test_cli_duplicate_answer_names_the_question(tmp_path, cli_main, capsys):
    paths = write_triple(tmp_path)
    result = json.loads(paths["result"].read_text())
    paths["result"].write_text(json.dumps(result + [{"question_id": 13, "answer": "yes"}]))
    assert cli_main([f"--{name}={path}" for name, path in paths.items()]) == 2
    assert "question 13 is answered more than once" in capsys.readouterr().err
