"""The VQA answer vocabulary (``extras/vocabs/answers_vqa.txt``) and the soft-score training target."""

import os
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ...data.errors import DataFormatError
from ...files import atomic_file

UNK = "<unk>"
FILE_NAME = "answers_vqa.txt"  # the released vocabulary's name; a model folder holding it needs no --answers_file


class AnswerVocab:
    """Answers by index; index 0 is ``<unk>``, which every answer outside the vocabulary maps to."""

    def __init__(self, answers: Sequence[str], path: str | None = None):
        where = path or "answer vocabulary"
        if not answers or answers[0] != UNK:
            raise DataFormatError(f"{where}: the first answer must be {UNK!r}, got {answers[:1]}")
        duplicates = [answer for answer, count in Counter(answers).items() if count > 1]
        if duplicates:
            raise DataFormatError(f"{where}: duplicate answers {duplicates[:5]}")
        self.answers = list(answers)
        self.path = path
        self._index = {answer: index for index, answer in enumerate(self.answers)}

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, index: int) -> str:
        return self.answers[index]

    def index(self, answer: str) -> int:
        """Index of ``answer``; 0 (``<unk>``) if it is not in the vocabulary."""
        return self._index.get(answer, 0)


def load_answer_vocab(path: str) -> AnswerVocab:
    """Read an answer vocabulary: one answer per line, ``<unk>`` first."""
    with open(path, encoding="utf-8") as f:
        answers = [line.strip() for line in f if line.strip()]
    return AnswerVocab(answers, path=path)


def save_answer_vocab(vocab: AnswerVocab, folder: str) -> str:
    """Write ``vocab`` to ``folder/answers_vqa.txt`` (atomically), where the predictor looks; returns the path."""
    path = os.path.join(folder, FILE_NAME)
    with atomic_file(path) as f:
        f.writelines(answer + "\n" for answer in vocab.answers)
    return path


def soft_scores(answers: Sequence[str], vocab: AnswerVocab) -> np.ndarray:
    """Target over the vocabulary: min(0.3 * count, 1) per human answer, 0 for ``<unk>``.

    With the usual 10 human answers this equals the official VQA accuracy of predicting that answer.
    """
    scores = np.zeros(len(vocab), dtype=np.float32)
    for answer, count in Counter(answers).items():
        index = vocab.index(answer)
        if index != 0:
            scores[index] = min(0.3 * count, 1.0)
    return scores
