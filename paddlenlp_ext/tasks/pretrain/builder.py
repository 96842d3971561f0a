"""COCO captions (``annotations/captions_{train,val}2014.json``), read with pycocotools."""

import contextlib
import io
import os
from typing import ClassVar

from paddlenlp.datasets import DatasetBuilder
from pycocotools.coco import COCO

from ...data.download import locate
from ...data.errors import DataFormatError

__all__ = ["COCOCaptions"]


class COCOCaptions(DatasetBuilder):
    """COCO 2014 captions, one record per caption.

    Records: ``caption_id`` (int), ``image_id`` (int), ``image_name`` (e.g. ``COCO_train2014_000000000009``, the key
    of the image's region features) and ``caption``.

    ``load_dataset("coco_captions", splits=..., data_dir=DIR)`` reads ``DIR/annotations/captions_<split>2014.json``;
    without ``data_dir`` the official annotation archive is downloaded into PaddleNLP's DATA_HOME.
    """

    URL = "http://images.cocodataset.org/annotations/annotations_trainval2014.zip"
    MD5 = None  # COCO publishes no checksum for this archive
    SPLITS: ClassVar[dict[str, str]] = {
        "train": os.path.join("annotations", "captions_train2014.json"),
        "val": os.path.join("annotations", "captions_val2014.json"),
    }

    def __init__(self, lazy=None, name=None, data_dir: str | None = None):
        super().__init__(lazy=lazy, name=name)
        self.data_dir = data_dir

    def _get_data(self, mode: str) -> str:
        return locate(self.SPLITS[mode], self.data_dir, self.__class__.__name__, self.URL, self.MD5)

    def _read(self, filename: str, split: str):
        try:
            # pycocotools prints progress for every file it indexes
            with contextlib.redirect_stdout(io.StringIO()):
                coco = COCO(filename)
        except (ValueError, KeyError, TypeError) as error:
            raise DataFormatError(f"cannot read COCO captions file {filename}: {error!r}") from error
        if not coco.anns:
            raise DataFormatError(f"COCO captions file {filename} holds no captions")
        for annotation in coco.dataset["annotations"]:
            yield _caption_record(annotation, coco.imgs, filename)


def _caption_record(annotation: dict, images: dict, filename: str) -> dict:
    caption_id = annotation.get("id")
    image = images.get(annotation.get("image_id"))
    if image is None or "file_name" not in image:
        raise DataFormatError(f"{filename}: caption {caption_id} refers to no listed image with a file_name")
    if not isinstance(annotation.get("caption"), str):
        raise DataFormatError(f"{filename}: caption {caption_id} has no caption text")
    return {
        "caption_id": int(caption_id),
        "image_id": int(image["id"]),
        "image_name": os.path.splitext(image["file_name"])[0],
        "caption": annotation["caption"],
    }
