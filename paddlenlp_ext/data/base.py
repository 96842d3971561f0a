"""What the task datasets share: records + lazy region features, per-epoch randomness, early feature checks, and
data errors carried out of DataLoader workers."""

import gc
import os
import sys
import traceback

import numpy as np
import paddle
from paddle.io.dataloader import fetcher
from paddlenlp.utils.log import logger
from tqdm import tqdm

from .errors import DATA_ERROR, DataFormatError, MissingFeatureError
from .features import RegionFeatures
from .masking import TokenMasker
from .text import check_tokenizer


class TaskDataset(paddle.io.Dataset):
    """Map-style dataset turning builder records into model examples (numpy), reading features on access.

    Randomness (masking, caption pairs, answer choice) comes from a generator seeded by ``(seed, epoch, index)``:
    the same example is the same in every worker and every run, and changes when ``set_epoch`` moves to a new
    epoch. Call ``set_epoch`` before iterating the DataLoader each epoch; workers take a copy of the dataset when
    the iteration starts (so not with ``persistent_workers=True``).

    Subclasses build an example in ``example(index)``. Indexing raises its errors, except when Paddle's DataLoader
    fetches (in a worker process, or in the reader thread of ``num_workers=0``): Paddle buries an exception raised
    there under "Blocking queue is killed", or hangs, so the example is ``{DATA_ERROR: error}`` instead, which the
    collator carries to the main process and ``model_inputs`` raises there.

    Args:
        records: the builder's records (a ``load_dataset`` result or any sequence of dicts).
        features: region features of the task's feature type.
        tokenizer: a BERT wordpiece tokenizer.
        max_seq_length: most text tokens per example, [CLS] and [SEP] included.
        seed: base seed of the per-example randomness.
        skip_missing: drop examples whose feature files are missing (and log how many) instead of failing on them.
        mlm_probability: masking rate, for the tasks that mask.
    """

    def __init__(
        self,
        records,
        features: RegionFeatures,
        tokenizer,
        max_seq_length: int = 128,
        seed: int = 0,
        skip_missing: bool = False,
        mlm_probability: float = 0.15,
    ):
        check_tokenizer(tokenizer)
        self.features = features
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.seed = seed
        self.epoch = 0
        self.masker = TokenMasker(tokenizer, mlm_probability)
        records = [records[i] for i in range(len(records))]
        self.num_skipped = 0
        if skip_missing:
            records = self._drop_missing(records)
        if not records:
            raise DataFormatError(f"{type(self).__name__} has no examples (feature folder {features.feature_dir})")
        self.records = records

    def image_names(self, record: dict) -> tuple[str, ...]:
        """Names of the images whose features the example of ``record`` uses."""
        raise NotImplementedError

    def example_id(self, record: dict):
        """The id error messages use for ``record``."""
        raise NotImplementedError

    def example(self, index: int) -> dict:
        """The model example of record ``index`` (numpy)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        if not _fetched_by_loader():
            return self.example(index)
        _freeze_inherited_objects()
        try:
            return self.example(index)
        except (DataFormatError, MissingFeatureError) as error:
            return {DATA_ERROR: error}
        except Exception:
            # Any other error is a bug: keep its traceback, which does not cross process boundaries.
            return {DATA_ERROR: RuntimeError(f"building example {index} failed:\n{traceback.format_exc()}")}

    def set_epoch(self, epoch: int) -> None:
        """Draw the per-example randomness of ``epoch`` from now on."""
        self.epoch = epoch

    def rng(self, index: int) -> np.random.Generator:
        """The random generator of example ``index`` in the current epoch."""
        return np.random.default_rng((self.seed, self.epoch, index))

    def load_visual(self, record: dict) -> list[np.ndarray]:
        """Region features of each image of ``record``, ``[num_boxes, dim]`` float32."""
        example_id = self.example_id(record)
        return [self.features.load(name, example_id=example_id) for name in self.image_names(record)]

    def check_features(self) -> None:
        """Check that every feature file exists and read the first example's, so a missing file, a wrong folder or
        dimension fails before training starts."""
        self.check_files()
        self.load_visual(self.records[0])

    def check_files(self) -> None:
        """Raise ``MissingFeatureError`` listing the first few missing feature files, the first with its example (an
        existence check per image, no read)."""
        first_use = {}  # image name -> the first example using it
        for record in self.records:
            for name in self.image_names(record):
                first_use.setdefault(name, record)
        missing = [name for name in first_use if not self.features.exists(name)]
        if missing:
            listed = [os.path.basename(self.features.path(name)) for name in missing[:_LISTED]]
            listed[0] += f" (example {self.example_id(first_use[missing[0]])})"
            raise MissingFeatureError(
                f"{len(missing)} of {len(first_use)} feature files missing under {self.features.feature_dir}: "
                + ", ".join(listed)
                + (", ..." if len(missing) > _LISTED else "")
            )

    def _drop_missing(self, records: list[dict]) -> list[dict]:
        kept = [
            record
            for record in tqdm(records, desc="checking feature files", leave=False, disable=None)
            if all(self.features.exists(name) for name in self.image_names(record))
        ]
        self.num_skipped = len(records) - len(kept)
        if self.num_skipped:
            logger.warning(
                f"{type(self).__name__}: skipped {self.num_skipped} of {len(records)} examples whose region "
                f"features are missing under {self.features.feature_dir}"
            )
        return kept


_LISTED = 3  # missing feature files named in check_files' message


def _fetched_by_loader() -> bool:
    """Whether ``__getitem__`` was called by Paddle's DataLoader fetcher (in a worker process, or in the reader thread
    of ``num_workers=0``) rather than by indexing anywhere else, another thread included."""
    return sys._getframe(2).f_globals.get("__name__") == _PADDLE_FETCHER


_PADDLE_FETCHER = fetcher.__name__


def _freeze_inherited_objects() -> None:
    """In a DataLoader worker, once: exclude the objects inherited from the parent from garbage collection.

    A worker is forked with the parent's whole heap (Paddle, PaddleNLP, the records). A full collection visits, and
    writes to, every object, so the worker's first one copies that heap page by page (copy-on-write) and each one
    walks it. Garbage cycles among the inherited objects stay uncollected while the worker lives (an epoch).
    """
    global _frozen_in
    if _frozen_in != os.getpid() and paddle.io.get_worker_info() is not None:
        gc.freeze()
        _frozen_in = os.getpid()


_frozen_in = None  # the worker process that froze its inherited objects
