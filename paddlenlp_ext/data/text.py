"""The tokenizer (loaded and checked) and the ``[CLS] first [SEP] (second [SEP])`` text layout."""

import os
from dataclasses import dataclass

import numpy as np
from paddlenlp.transformers import BertTokenizer
from paddlenlp.utils.env import MODEL_HOME
from paddlenlp.utils.log import logger

from .. import paths
from ..transformers.visualbert.configuration import PRETRAINED_CHECKPOINTS
from .errors import DataFormatError

# The vocab of the nine published checkpoints, which ship none (their converted folders hold no vocab.txt).
PUBLISHED_TOKENIZER = "bert-base-uncased"


def load_tokenizer(name_or_path: str | None = None, model_name_or_path: str | None = None) -> BertTokenizer:
    """An uncased ``BertTokenizer``, checked to hold the special tokens (see ``check_tokenizer``).

    ``name_or_path`` is a vocab.txt, a folder holding one, or a PaddleNLP name (downloaded once). Without it, the
    vocab saved with the model ``model_name_or_path`` (a folder, or a checkpoint name under CHECKPOINT_HOME) is used;
    one of the nine published checkpoints uses bert-base-uncased; anything else is an error (no silent download).
    """
    name = name_or_path or _model_tokenizer(model_name_or_path)
    if os.path.isfile(name):
        tokenizer = BertTokenizer(vocab_file=name)
    elif os.path.isdir(name):
        if not os.path.exists(os.path.join(name, "vocab.txt")):
            raise FileNotFoundError(f"--tokenizer_name_or_path {name}: no vocab.txt in the folder")
        tokenizer = BertTokenizer.from_pretrained(name)
    elif name.endswith(".txt") or name.startswith((".", os.sep, "~")):
        # a path that is not there, rather than a name to look up online
        raise FileNotFoundError(f"--tokenizer_name_or_path {name}: no such file or folder")
    else:
        logger.info(f"tokenizer: {name}")
        tokenizer = _fetch(name)
    check_tokenizer(tokenizer)
    return tokenizer


def _model_tokenizer(model_name_or_path: str | None) -> str:
    """The tokenizer of a model given without --tokenizer_name_or_path: its folder's vocab.txt (models saved by the
    trainer hold one) or, for a published checkpoint, bert-base-uncased."""
    if not model_name_or_path:
        raise FileNotFoundError(
            "no tokenizer: neither --tokenizer_name_or_path nor --model_name_or_path is given; "
            "pass --tokenizer_name_or_path (a vocab.txt, a folder holding one, or a PaddleNLP name)"
        )
    folder = model_name_or_path
    if not os.path.isdir(folder):
        folder = os.path.join(paths.CHECKPOINT_HOME, folder)
    if os.path.exists(os.path.join(folder, "vocab.txt")):
        return folder
    if model_name_or_path in PRETRAINED_CHECKPOINTS:
        return PUBLISHED_TOKENIZER
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--model_name_or_path {model_name_or_path}: no such folder or checkpoint name")
    raise FileNotFoundError(
        f"no tokenizer: the model folder {folder} holds no vocab.txt and --tokenizer_name_or_path is not given; "
        "pass --tokenizer_name_or_path"
    )


def _fetch(name: str) -> BertTokenizer:
    """``BertTokenizer.from_pretrained(name)``, failing with one line naming it; a failed download's empty files go
    (PaddleNLP would otherwise find them next time)."""
    folder = os.path.join(MODEL_HOME, name)
    before = set(os.listdir(MODEL_HOME)) if os.path.isdir(MODEL_HOME) else set()
    try:
        return BertTokenizer.from_pretrained(name)
    except (OSError, ValueError) as e:
        stray = [os.path.join(folder, f) for f in os.listdir(folder)] if os.path.isdir(folder) else []
        if os.path.isdir(MODEL_HOME):  # its temporary download file, left empty
            stray += [os.path.join(MODEL_HOME, f) for f in set(os.listdir(MODEL_HOME)) - before if f.startswith("tmp")]
        for path in stray:
            if os.path.isfile(path) and os.path.getsize(path) == 0:
                os.remove(path)
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        raise OSError(f"tokenizer {name!r} could not be loaded from PaddleNLP (offline or not a name?)") from e


def check_tokenizer(tokenizer) -> None:
    """Raise ``DataFormatError`` naming the vocab file if it lacks [PAD], [UNK], [CLS], [SEP] or [MASK].

    PaddleNLP's tokenizer would otherwise map a missing [MASK] to [UNK] without a word.
    """
    special = (
        tokenizer.pad_token,
        tokenizer.unk_token,
        tokenizer.cls_token,
        tokenizer.sep_token,
        tokenizer.mask_token,
    )
    missing = [token for token in special if token not in tokenizer.vocab.token_to_idx]
    if missing:
        vocab_file = tokenizer.init_kwargs.get("vocab_file", "of the tokenizer")
        raise DataFormatError(f"vocab {vocab_file} lacks the special tokens {missing}")


@dataclass
class Text:
    """Token ids of one text input, with which positions masked-LM may corrupt."""

    input_ids: np.ndarray  # int64 [L]
    token_type_ids: np.ndarray  # int64 [L]
    maskable: np.ndarray  # bool [L]: True on wordpieces, False on [CLS]/[SEP]


def build_text(tokenizer, first: list[str], second: list[str] | None = None) -> Text:
    """``[CLS] first [SEP]`` (token type 0), then ``second [SEP]`` (token type 1) if given; inputs are wordpieces."""
    tokens = [tokenizer.cls_token, *first, tokenizer.sep_token]
    token_type_ids = [0] * len(tokens)
    maskable = [False, *[True] * len(first), False]
    if second is not None:
        tokens += [*second, tokenizer.sep_token]
        token_type_ids += [1] * (len(second) + 1)
        maskable += [*[True] * len(second), False]
    return Text(
        input_ids=np.array(tokenizer.convert_tokens_to_ids(tokens), dtype=np.int64),
        token_type_ids=np.array(token_type_ids, dtype=np.int64),
        maskable=np.array(maskable, dtype=bool),
    )


def truncate_pair_from_front(first: list[str], second: list[str], max_tokens: int) -> tuple[list[str], list[str]]:
    """Drop wordpieces from the front of the longer text until both fit in ``max_tokens`` (as the original did)."""
    cut_first = cut_second = 0
    while len(first) - cut_first + len(second) - cut_second > max_tokens:
        if len(first) - cut_first >= len(second) - cut_second:
            cut_first += 1
        else:
            cut_second += 1
    return first[cut_first:], second[cut_second:]
