"""VQA v2 questions in Pythia's "imdb" format (``imdb/imdb_<split>.npy``)."""

import os
from typing import ClassVar

import numpy as np
from paddlenlp.datasets import DatasetBuilder
from paddlenlp.utils.env import DATA_HOME

from ...data.download import locate
from ...data.errors import DataFormatError

__all__ = ["VQA2"]

REQUIRED_FIELDS = ("image_name", "image_id", "question_id", "question_str", "question_tokens")


class VQA2(DatasetBuilder):
    """VQA v2 questions, one record per question.

    Records: ``question_id`` (int), ``image_id`` (int), ``image_name`` (e.g. ``COCO_val2014_000000000042``, the key
    of the image's region features), ``question_str``, ``question_tokens`` (list of str) and ``answers`` (the human
    answers; empty where the split has none, as in test).

    ``load_dataset("vqa2", splits=..., data_dir=DIR)`` reads ``DIR/imdb/imdb_<split>.npy``; without ``data_dir`` the
    files are looked up (and downloaded) under PaddleNLP's DATA_HOME. ``data_files=`` reads given files instead.
    The answer vocabulary path is in the dataset's ``vocab_info["filepath"]``.
    """

    URL = "https://dl.fbaipublicfiles.com/pythia/data/imdb.tar.gz"
    MD5 = None  # Pythia publishes no checksum for this archive
    ANSWERS_URL = "https://dl.fbaipublicfiles.com/mmf/data/datasets/vqa2/defaults/extras.tar.gz"
    ANSWERS_MD5 = "9baaf3291221fdef49852046a500f731"
    ANSWERS_FILE = os.path.join("extras", "vocabs", "answers_vqa.txt")
    SPLITS: ClassVar[dict[str, str]] = {
        "train": os.path.join("imdb", "imdb_train2014.npy"),
        "val": os.path.join("imdb", "imdb_val2014.npy"),
        "trainval": os.path.join("imdb", "imdb_trainval2014.npy"),
        "minival": os.path.join("imdb", "imdb_minival2014.npy"),
        "test": os.path.join("imdb", "imdb_test2015.npy"),
    }

    def __init__(self, lazy=None, name=None, data_dir: str | None = None):
        super().__init__(lazy=lazy, name=name)
        self.data_dir = data_dir

    def _get_data(self, mode: str) -> str:
        if self.data_dir is None:
            locate(self.ANSWERS_FILE, None, self.__class__.__name__, self.ANSWERS_URL, self.ANSWERS_MD5)
        return locate(self.SPLITS[mode], self.data_dir, self.__class__.__name__, self.URL, self.MD5)

    def _read(self, filename: str, split: str):
        try:
            entries = np.load(filename, allow_pickle=True)
        except (ValueError, OSError, EOFError) as error:
            raise DataFormatError(f"cannot read imdb file {filename}: {error}") from error
        if len(entries) < 2:
            raise DataFormatError(f"imdb file {filename} holds no questions (only a header)")
        header = entries[0]
        if not isinstance(header, dict) or "question_id" in header:
            raise DataFormatError(f"imdb file {filename}: element 0 must be the header dict, got {header!r:.80}")
        # The test imdb has no answers; its header says so, and so does the split name when the header does not.
        has_answers = split != "test" and header.get("has_answer", True)
        for position in range(1, len(entries)):
            yield _question_record(entries[position], filename, position, has_answers)

    def get_vocab(self):
        root = self.data_dir or os.path.join(DATA_HOME, self.__class__.__name__)
        return {"filepath": os.path.join(root, self.ANSWERS_FILE)}


def _question_record(entry, filename: str, position: int, has_answers: bool) -> dict:
    if not isinstance(entry, dict):
        raise DataFormatError(f"{filename}: entry {position} is a {type(entry).__name__}, not a question dict")
    example = f"question_id {entry['question_id']}" if "question_id" in entry else f"entry {position}"
    missing = [field for field in REQUIRED_FIELDS if field not in entry]
    if missing:
        raise DataFormatError(f"{filename}: {example} lacks {missing}")
    if "answers" in entry:
        answers = entry["answers"]
    elif "valid_answers" in entry:
        answers = entry["valid_answers"]
    elif has_answers:
        raise DataFormatError(f"{filename}: {example} has neither 'answers' nor 'valid_answers'")
    else:
        answers = []
    return {
        "question_id": int(entry["question_id"]),
        "image_id": int(entry["image_id"]),
        "image_name": str(entry["image_name"]),
        "question_str": str(entry["question_str"]),
        "question_tokens": [str(token) for token in entry["question_tokens"]],
        "answers": [str(answer) for answer in answers],
    }
