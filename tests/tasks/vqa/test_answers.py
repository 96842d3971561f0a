import numpy as np
import pytest

from paddlenlp_ext.data import DataFormatError
from paddlenlp_ext.tasks.vqa.answers import AnswerVocab, load_answer_vocab, soft_scores

VOCAB = AnswerVocab(["<unk>", "yes", "no", "2", "3", "red"])


def scores_by_answer(answers):
    scores = soft_scores(answers, VOCAB)
    return {VOCAB[i]: round(float(scores[i]), 6) for i in np.flatnonzero(scores)}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["yes"] * 10, {"yes": 1.0}),
        (["2"] * 3 + ["3"] * 7, {"2": 0.9, "3": 1.0}),
        (["2"] * 2 + ["red"] + ["no"] * 7, {"2": 0.6, "red": 0.3, "no": 1.0}),
        (["yes"] * 4 + ["no"] * 4 + ["maybe"] * 2, {"yes": 1.0, "no": 1.0}),
        # answers outside the vocabulary map to <unk>, which never gets credit
        (["maybe"] * 9 + ["red"], {"red": 0.3}),
        ([], {}),
    ],
)
def test_soft_scores_are_min_of_03_count_and_1(answers, expected):
    assert scores_by_answer(answers) == expected


def test_soft_scores_cover_the_whole_vocabulary():
    scores = soft_scores(["yes"] * 10, VOCAB)
    assert scores.dtype == np.float32 and scores.shape == (6,) and scores[0] == 0


def test_vocab_file_round_trip(tmp_path):
    path = tmp_path / "answers_vqa.txt"
    path.write_text("<unk>\nyes\nno\n")
    vocab = load_answer_vocab(str(path))
    assert len(vocab) == 3 and vocab.index("no") == 2 and vocab.index("blue") == 0 and vocab[1] == "yes"


def test_vocab_must_start_with_unk_and_hold_no_duplicates(tmp_path):
    path = tmp_path / "answers_vqa.txt"
    path.write_text("yes\n<unk>\n")
    with pytest.raises(DataFormatError, match="answers_vqa.txt: the first answer must be '<unk>'"):
        load_answer_vocab(str(path))
    path.write_text("<unk>\nyes\nyes\n")
    with pytest.raises(DataFormatError, match=r"duplicate answers \['yes'\]"):
        load_answer_vocab(str(path))


def test_sample_vocab_has_the_real_shape(answers):
    assert answers[0] == "<unk>" and {"yes", "no", "0", "red", "cube"} <= set(answers.answers)
