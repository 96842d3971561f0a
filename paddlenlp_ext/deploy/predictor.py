"""Ask a finetuned VisualBERT about one example, or a few: a question about an image (VQA), a statement about a pair
of images (NLVR2).

The model inputs are built by the task datasets themselves (``VqaDataset``, ``Nlvr2Dataset``, over features held in
memory) and padded by the project's collator, so an example gets the inputs, and the prediction, it gets in
``tasks.vqa.task.predict`` / ``tasks.nlvr2.task.predict``. The model is a saved or converted folder (run eagerly,
in eval mode) or an exported one (a folder holding ``export.json``, run by ``deploy.inference.InferenceModel``).
"""

import os
import re

import numpy as np
import paddle

from .. import paths
from ..data import (
    FEATURE_TYPES,
    MODEL_INPUTS,
    RegionFeatures,
    VisualBertCollator,
    check_tokenizer,
    load_tokenizer,
    nlvr2_image_names,
)
from ..tasks.nlvr2 import task as nlvr2
from ..tasks.nlvr2.dataset import Nlvr2Dataset
from ..tasks.vqa import task as vqa
from ..tasks.vqa.answers import FILE_NAME as ANSWERS_FILE
from ..tasks.vqa.answers import load_answer_vocab
from ..tasks.vqa.dataset import VqaDataset
from ..transformers import VisualBertForQuestionAnswering, VisualBertForVisualReasoning
from .export import EXPORT_FILE
from .inference import InferenceModel

__all__ = ["Nlvr2Predictor", "VqaPredictor", "load_features", "question_tokens"]

DEFAULT_MAX_SEQ_LENGTH = 128  # the training runs' --max_seq_length
_PYTHIA_SPLIT = re.compile(r"(\W+)")


def question_tokens(question: str) -> list[str]:
    """A question's ``question_tokens`` as the released imdb files hold them (Pythia's tokenizer): lowercased, ','
    and '?' dropped, split into runs of word characters and runs of other characters."""
    text = question.lower().replace(",", "").replace("?", "").replace("'s", " 's")
    return [token.strip() for token in _PYTHIA_SPLIT.split(text) if token.strip()]


def load_features(path: str) -> np.ndarray:
    """The region features of one image from a ``.npy`` file; ValueError naming the file when it cannot be read."""
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"cannot read features {path}: {error}") from error
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise ValueError(f"features {path} is not one .npy array")
    return array


class _MemoryFeatures(RegionFeatures):
    """``RegionFeatures`` over arrays in memory, by image name; keeps the first ``max_boxes`` boxes, as it does."""

    def __init__(self, feature_type: str, arrays: dict, dim: int, max_boxes: int):
        super().__init__("<memory>", feature_type, dim=dim, max_boxes=max_boxes)
        self.arrays = arrays

    def load(self, image_name: str, example_id=None) -> np.ndarray:
        return self.arrays[image_name][: self.max_boxes]


def _load_model(path: str, task: str, head) -> tuple:
    """(config, function of the numpy model inputs -> numpy logits) of a model folder or an exported one."""
    if os.path.isfile(os.path.join(path, EXPORT_FILE)):
        exported = InferenceModel.from_dir(path)
        if exported.task != task:
            raise ValueError(f"{path} is an exported {exported.task} model, not a {task} one")
        return exported.config, lambda inputs: exported(**inputs)["logits"]
    model = head.from_pretrained(path)
    architectures = model.config.architectures or []
    if architectures and architectures != [head.__name__]:
        raise ValueError(f"{path} holds a {architectures[0]}, not a {head.__name__} ({task})")
    model.eval()

    @paddle.no_grad()
    def logits(inputs: dict) -> np.ndarray:
        return model(**{k: paddle.to_tensor(v) for k, v in inputs.items()}, return_dict=True).logits.numpy()

    return model.config, logits


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


class _Predictor:
    """What both predictors share: loading, checking the inputs, padding them into a batch, running the model."""

    task = head = feature_type = None  # set by each predictor

    def __init__(self, path, tokenizer=None, max_seq_length: int | None = None, max_boxes: int | None = None):
        self.config, self._logits = _load_model(path, self.task, self.head)
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = load_tokenizer(tokenizer, path)
        check_tokenizer(tokenizer)
        if len(tokenizer.vocab) > self.config.vocab_size:
            raise ValueError(
                f"the tokenizer has {len(tokenizer.vocab)} wordpieces, the model {self.config.vocab_size}"
            )
        self.tokenizer = tokenizer
        limit = self.config.max_position_embeddings
        self.max_seq_length = max_seq_length or min(DEFAULT_MAX_SEQ_LENGTH, limit)
        if not 4 <= self.max_seq_length <= limit:
            raise ValueError(
                f"max_seq_length must be 4 .. {limit} (max_position_embeddings), got {self.max_seq_length}"
            )
        self.max_boxes = max_boxes or FEATURE_TYPES[self.feature_type].max_boxes
        if self.max_boxes < 1:
            raise ValueError(f"max_boxes must be at least 1, got {max_boxes}")
        self._collate = VisualBertCollator(tokenizer.pad_token_id)

    def _batch(self, texts, arrays: dict, text_name: str) -> tuple[list[str], dict]:
        """(texts, {name: checked feature arrays}) of one example (a string) or a batch (lists)."""
        single = isinstance(texts, str)
        if single:
            texts, arrays = [texts], {name: [array] for name, array in arrays.items()}
        elif not isinstance(texts, (list, tuple)) or not texts:
            raise ValueError(f"give a {text_name} (a string) or a non-empty list of them, got {type(texts).__name__}")
        for name, values in arrays.items():
            if not isinstance(values, (list, tuple)) or len(values) != len(texts):
                raise ValueError(f"{len(texts)} {text_name}s need a list of {len(texts)} {name} arrays")

        def label(name, index):
            return name if single else f"{name}[{index}]"

        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValueError(f"{label(text_name, index)} must be a string, got {type(text).__name__}")
            if not text.strip():
                raise ValueError(f"{label(text_name, index)} is empty")
        checked = {
            name: [self._check_features(array, label(name, index)) for index, array in enumerate(values)]
            for name, values in arrays.items()
        }
        return list(texts), checked

    def _check_features(self, features, name: str) -> np.ndarray:
        dim = self.config.visual_embedding_dim
        try:
            array = np.asarray(features, dtype=np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"{name} is not an array of numbers") from None
        if array.ndim != 2:
            raise ValueError(f"{name} must be 2-D [boxes, {dim}], got shape {array.shape}")
        if array.shape[0] == 0:
            raise ValueError(f"{name} has zero boxes")
        if array.shape[1] != dim:
            raise ValueError(
                f"{name} has {array.shape[1]} features per box, the model takes {dim} (visual_embedding_dim)"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values")
        return array

    def _inputs(self, dataset) -> dict:
        batch = self._collate([dataset[index] for index in range(len(dataset))])
        return {key: batch[key] for key in MODEL_INPUTS}


class VqaPredictor(_Predictor):
    """Answers questions about images: ``predictor(question, features, top_k=5)`` -> [(answer, probability), ...].

    Probabilities are the softmax over the answer vocabulary with ``<unk>`` left out, as in ``vqa.task.predict``.
    A question is tokenized as the released imdb files are (``question_tokens``), then laid out as ``VqaDataset``
    does: ``[CLS] question ? [MASK] [SEP]``, its wordpieces cut to ``max_seq_length`` - 4; the first ``max_boxes``
    boxes are kept (default 100, as the released features).
    """

    task, head, feature_type = "vqa", VisualBertForQuestionAnswering, vqa.FEATURE_TYPE

    def __init__(self, path, answers_file=None, tokenizer=None, max_seq_length=None, max_boxes=None):
        super().__init__(path, tokenizer, max_seq_length, max_boxes)
        if answers_file is None:
            folder = path if os.path.isdir(path) else os.path.join(paths.CHECKPOINT_HOME, path)
            answers_file = os.path.join(folder, ANSWERS_FILE)
            if not os.path.isfile(answers_file):
                raise FileNotFoundError(
                    f"no answer vocabulary {answers_file}: pass answers_file (the answers_vqa.txt the model was "
                    "trained with, INPUT_DIR/extras/vocabs/answers_vqa.txt) or copy it into the model folder"
                )
        self.answers = load_answer_vocab(answers_file)
        if self.config.num_labels != len(self.answers):
            raise ValueError(f"the model has {self.config.num_labels} answers, {answers_file} {len(self.answers)}")

    @classmethod
    def from_pretrained(cls, path, answers_file=None, tokenizer=None, max_seq_length=None, max_boxes=None):
        """Load a model folder (saved, converted or a checkpoint name) or an exported folder.

        ``answers_file`` defaults to the folder's ``answers_vqa.txt``; ``tokenizer`` (a vocab.txt, a folder holding
        one, a PaddleNLP name or a tokenizer) to the folder's vocab.txt (see ``data.text.load_tokenizer``);
        ``max_seq_length`` to 128 or the model's max_position_embeddings if fewer.
        """
        return cls(path, answers_file, tokenizer, max_seq_length, max_boxes)

    def encode(self, question, features) -> dict:
        """The padded numpy model inputs (``MODEL_INPUTS``) of a question or a list of questions."""
        questions, arrays = self._batch(question, {"features": features}, "question")
        records = []
        for index, text in enumerate(questions):
            tokens = question_tokens(text)
            if not tokens:
                raise ValueError(f"question {text!r} has no words once ',' and '?' are dropped")
            records.append({"question_id": index, "image_name": f"image-{index}", "question_tokens": tokens})
        images = {record["image_name"]: array for record, array in zip(records, arrays["features"])}
        dim = self.config.visual_embedding_dim
        features = _MemoryFeatures(self.feature_type, images, dim, self.max_boxes)
        return self._inputs(VqaDataset(records, features, self.tokenizer, max_seq_length=self.max_seq_length))

    def __call__(self, question, features, top_k: int = 5):
        """The ``top_k`` answers, best first, as (answer, probability) pairs; for lists of questions and of feature
        arrays (one per question), one such list per question, computed in one forward pass."""
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or not 1 <= top_k < len(self.answers):
            raise ValueError(f"top_k must be an integer 1 .. {len(self.answers) - 1} (the answers but <unk>): {top_k}")
        single = isinstance(question, str)
        logits = self._logits(self.encode(question, features)).astype(np.float64)
        logits[:, 0] = -np.inf  # as vqa.task.predict: <unk> stands for "not in the vocabulary", never an answer
        probs = _softmax(logits)
        best = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
        results = [[(self.answers[i], float(row[i])) for i in indices] for row, indices in zip(probs, best)]
        return results[0] if single else results


class Nlvr2Predictor(_Predictor):
    """Judges statements about image pairs: ``predictor(statement, left, right)`` -> (verdict, its probability).

    Inputs are laid out as ``Nlvr2Dataset`` does: ``[CLS] statement [SEP]`` (cut to ``max_seq_length``), the
    first ``max_boxes`` (default 144) boxes of the left image with visual token type 0, then the right image's
    with type 1. The verdict is the argmax of the two logits, as in ``nlvr2.task.predict`` (True = label 1).
    """

    task, head, feature_type = "nlvr2", VisualBertForVisualReasoning, nlvr2.FEATURE_TYPE

    def __init__(self, path, tokenizer=None, max_seq_length=None, max_boxes=None):
        super().__init__(path, tokenizer, max_seq_length, max_boxes)
        if self.config.num_labels != 2:
            raise ValueError(f"{path}: an NLVR2 model has 2 labels, this one {self.config.num_labels}")

    @classmethod
    def from_pretrained(cls, path, tokenizer=None, max_seq_length=None, max_boxes=None):
        """Load a model folder (saved, converted or a checkpoint name) or an exported folder; ``tokenizer`` and
        ``max_seq_length`` as in ``VqaPredictor.from_pretrained``."""
        return cls(path, tokenizer, max_seq_length, max_boxes)

    def encode(self, statement, left, right) -> dict:
        """The padded numpy model inputs (``MODEL_INPUTS``) of a statement or a list of statements."""
        statements, arrays = self._batch(statement, {"left": left, "right": right}, "statement")
        records, images = [], {}
        for index, (text, left_array, right_array) in enumerate(zip(statements, arrays["left"], arrays["right"])):
            records.append({"identifier": f"input-{index}-0", "sentence": text, "label": 0})
            left_name, right_name = nlvr2_image_names(records[-1]["identifier"])
            images[left_name], images[right_name] = left_array, right_array
        dim = self.config.visual_embedding_dim
        features = _MemoryFeatures(self.feature_type, images, dim, self.max_boxes)
        return self._inputs(Nlvr2Dataset(records, features, self.tokenizer, max_seq_length=self.max_seq_length))

    def __call__(self, statement, left, right):
        """(True if the statement holds, probability of that verdict); for lists of statements and of left and
        right feature arrays, one such pair per statement, computed in one forward pass."""
        single = isinstance(statement, str)
        probs = _softmax(self._logits(self.encode(statement, left, right)).astype(np.float64))
        labels = probs.argmax(-1)
        results = [(bool(label == 1), float(row[label])) for row, label in zip(probs, labels)]
        return results[0] if single else results
