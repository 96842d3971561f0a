"""Region features on disk: where each feature type keeps its ``.npy`` files, and a lazy reader for them.

Every image has one float32 ``[num_boxes, dim]`` file. The three feature types and their folders under a
``feature_dir``:

- ``coco_detectron_fix_100`` (VQA and COCO, 2048-d, 100 boxes):
  ``data/detectron_fix_100/fc6/vqa/{train2014,val2014,test2015}/COCO_<split>_<id:012d>.npy``
- ``coco_detectron_fix_144`` (COCO for NLVR2, 1024-d, up to 144 boxes):
  ``data/detectron_fix_144/nlvr2/{train,val}/feature_1024dim/COCO_<split>_<id:012d>.npy``
- ``nlvr2_detectron_fix_144`` (NLVR2, 1024-d, up to 144 boxes per image):
  ``data/detectron_fix_144/{train,dev,test1}/feature_1024dim/<split>-<set>-<pair>-img{0,1}.png.npy``
"""

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import DataFormatError, MissingFeatureError

# Where the released features can be fetched (too large to download on demand).
FEATURE_SOURCES = {
    "coco_detectron_fix_100": "https://dl.fbaipublicfiles.com/pythia/features/detectron_fix_100.tar.gz",
    "coco_detectron_fix_144": "the COCO feature links in uclanlp/visualbert's README (NLVR2 section)",
    "nlvr2_detectron_fix_144": "the NLVR2 feature links in uclanlp/visualbert's README",
}


def coco_image_name(split: str, image_id: int) -> str:
    """COCO image name, e.g. ``coco_image_name("train2014", 9) == "COCO_train2014_000000000009"``."""
    return f"COCO_{split}_{int(image_id):012d}"


def nlvr2_image_names(identifier: str) -> tuple[str, str]:
    """Left and right image of an NLVR2 example: ``dev-850-0-0`` -> ``dev-850-0-img0.png``, ``dev-850-0-img1.png``."""
    pair = identifier.rsplit("-", 1)[0]
    return f"{pair}-img0.png", f"{pair}-img1.png"


def _coco_split(image_name: str) -> str:
    # COCO_train2014_000000000009 -> train2014
    return image_name.split("_")[1]


def _vqa_folder(image_name: str) -> str:
    return os.path.join("data", "detectron_fix_100", "fc6", "vqa", _coco_split(image_name))


def _coco_nlvr2_folder(image_name: str) -> str:
    # The NLVR2-flavour COCO folders drop the year: train2014 -> train.
    return os.path.join("data", "detectron_fix_144", "nlvr2", _coco_split(image_name)[:-4], "feature_1024dim")


def _nlvr2_folder(image_name: str) -> str:
    # dev-850-0-img0.png -> dev
    return os.path.join("data", "detectron_fix_144", image_name.split("-")[0], "feature_1024dim")


@dataclass(frozen=True)
class FeatureType:
    """One released set of region features."""

    name: str
    dim: int  # feature size per box
    max_boxes: int  # boxes kept per image (the rest are dropped)
    folder: Callable[[str], str]  # image name -> folder relative to the feature_dir


FEATURE_TYPES = {
    "coco_detectron_fix_100": FeatureType("coco_detectron_fix_100", 2048, 100, _vqa_folder),
    "coco_detectron_fix_144": FeatureType("coco_detectron_fix_144", 1024, 144, _coco_nlvr2_folder),
    "nlvr2_detectron_fix_144": FeatureType("nlvr2_detectron_fix_144", 1024, 144, _nlvr2_folder),
}


class RegionFeatures:
    """Reads the region features of one feature type from ``feature_dir``, one image at a time.

    Nothing is opened here: the dataset holding this object is forked or pickled into DataLoader workers, and each
    worker opens only the file of the example it is building. Files are memory-mapped, so only the kept boxes are
    read and nothing stays resident once an example is collated: memory does not grow with the number of images.

    Args:
        feature_dir: folder holding the ``data/detectron_fix_*`` tree.
        feature_type: a key of ``FEATURE_TYPES``.
        dim: expected feature size (the model's ``visual_embedding_dim``); defaults to the feature type's.
        max_boxes: boxes kept per image; defaults to the feature type's.
    """

    def __init__(self, feature_dir: str, feature_type: str, dim: int | None = None, max_boxes: int | None = None):
        if feature_type not in FEATURE_TYPES:
            raise ValueError(f"unknown feature_type {feature_type!r}; choose from {sorted(FEATURE_TYPES)}")
        self.feature_dir = feature_dir
        self.feature_type = FEATURE_TYPES[feature_type]
        self.dim = dim or self.feature_type.dim
        self.max_boxes = max_boxes or self.feature_type.max_boxes

    def path(self, image_name: str) -> str:
        """The ``.npy`` file of ``image_name``."""
        return os.path.join(self.feature_dir, self.feature_type.folder(image_name), image_name + ".npy")

    def exists(self, image_name: str) -> bool:
        """Whether the feature file of ``image_name`` exists."""
        return os.path.isfile(self.path(image_name))

    def load(self, image_name: str, example_id=None) -> np.ndarray:
        """Features of ``image_name`` as a float32 ``[min(num_boxes, max_boxes), dim]`` array: a read-only view of
        the memory-mapped file (a float32 copy of float16 and float64 files).

        The collator copies the view into the batch, straight from the page cache; a private copy here cost a second
        copy, into fresh memory, per example. A view keeps its file open while it lives: ``np.array(...)`` the
        arrays to keep many.

        Raises ``MissingFeatureError``, or ``DataFormatError`` naming the file, ``example_id`` and what is wrong: not a
        readable .npy, not floats, a shape other than ``[num_boxes > 0, dim]``, or NaN / inf among the kept boxes.
        """
        path = self.path(image_name)
        where = path if example_id is None else f"{path} (example {example_id})"
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise MissingFeatureError(
                f"region features not found: {where}; set the feature folder (now {self.feature_dir!r}) or "
                f"download them from {FEATURE_SOURCES[self.feature_type.name]}"
            ) from None
        except (ValueError, OSError, EOFError) as error:
            # numpy's reason can span lines; the message stays one line
            reason = " ".join(str(error).split())
            raise DataFormatError(f"corrupt or truncated feature file {where}: {reason}") from error
        if not isinstance(mapped, np.ndarray):  # an .npz archive under a .npy name
            raise DataFormatError(f"feature file {where} is an .npz archive, not one .npy array")
        if mapped.dtype.kind != "f":
            raise DataFormatError(f"feature file {where} holds {mapped.dtype} values, expected floats")
        if mapped.ndim != 2 or mapped.shape[1] != self.dim:
            raise DataFormatError(
                f"feature file {where} has shape {mapped.shape}, expected [num_boxes, {self.dim}] "
                f"(visual_embedding_dim of the model)"
            )
        if mapped.shape[0] == 0:
            raise DataFormatError(f"feature file {where} has zero boxes")
        array = np.asarray(mapped[: self.max_boxes])
        if array.dtype != np.float32:
            with np.errstate(over="ignore"):
                array = array.astype(np.float32)
        # A detector can write NaN or inf, and float64 values beyond float32's range became inf in the cast.
        if not np.isfinite(array).all():
            raise DataFormatError(f"feature file {where} holds NaN or infinite values")
        return array
