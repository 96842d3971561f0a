"""What the task datasets share: records + lazy region features, per-epoch randomness, early feature checks."""

import numpy as np
import paddle
from paddlenlp.utils.log import logger
from tqdm import tqdm

from .errors import DataFormatError
from .features import RegionFeatures
from .masking import TokenMasker
from .text import check_tokenizer


class TaskDataset(paddle.io.Dataset):
    """Map-style dataset turning builder records into model examples (numpy), reading features on access.

    Randomness (masking, caption pairs, answer choice) comes from a generator seeded by ``(seed, epoch, index)``:
    the same example is the same in every worker and every run, and changes when ``set_epoch`` moves to a new
    epoch. Call ``set_epoch`` before iterating the DataLoader each epoch; workers take a copy of the dataset when
    the iteration starts (so not with ``persistent_workers=True``).

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

    def __len__(self) -> int:
        return len(self.records)

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
        """Read the first example's features now, so a wrong folder or dimension fails before training starts."""
        self.load_visual(self.records[0])

    def _drop_missing(self, records: list[dict]) -> list[dict]:
        kept = [
            record
            for record in tqdm(records, desc="checking feature files", leave=False)
            if all(self.features.exists(name) for name in self.image_names(record))
        ]
        self.num_skipped = len(records) - len(kept)
        if self.num_skipped:
            logger.warning(
                f"{type(self).__name__}: skipped {self.num_skipped} of {len(records)} examples whose region "
                f"features are missing under {self.features.feature_dir}"
            )
        return kept
