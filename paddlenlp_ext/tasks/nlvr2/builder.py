"""NLVR2 statements (JSON lines ``{train,dev,test1}.json``)."""

import json
from typing import ClassVar

from paddlenlp.datasets import DatasetBuilder

from ...data.download import locate
from ...data.errors import DataFormatError

__all__ = ["NLVR2"]

LABELS = {"True": 1, "False": 0}


class NLVR2(DatasetBuilder):
    """NLVR2, one record per (statement, image pair).

    Records: ``identifier`` (e.g. ``dev-850-0-0``; its images are ``dev-850-0-img0.png`` and ``-img1.png``),
    ``sentence`` and ``label`` (1 for "True", 0 for "False").

    ``load_dataset("nlvr2", splits=..., data_dir=DIR)`` reads ``DIR/<split>.json``; without ``data_dir`` the files
    are downloaded from the NLVR2 repository into PaddleNLP's DATA_HOME.
    """

    URL = "https://raw.githubusercontent.com/lil-lab/nlvr/master/nlvr2/data/{}"
    MD5 = None  # the NLVR2 repository publishes no checksums
    SPLITS: ClassVar[dict[str, str]] = {"train": "train.json", "dev": "dev.json", "test1": "test1.json"}

    def __init__(self, lazy=None, name=None, data_dir: str | None = None):
        super().__init__(lazy=lazy, name=name)
        self.data_dir = data_dir

    def _get_data(self, mode: str) -> str:
        filename = self.SPLITS[mode]
        return locate(filename, self.data_dir, self.__class__.__name__, self.URL.format(filename), self.MD5)

    def _read(self, filename: str, split: str):
        count = 0
        with open(filename, encoding="utf-8") as f:
            for line_number, line in enumerate(f, start=1):
                if line.strip():
                    count += 1
                    yield _statement_record(line, filename, line_number)
        if count == 0:
            raise DataFormatError(f"NLVR2 file {filename} holds no examples")


def _statement_record(line: str, filename: str, line_number: int) -> dict:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"{filename}:{line_number}: not a JSON object: {error}") from error
    if not isinstance(entry, dict):
        raise DataFormatError(f"{filename}:{line_number}: not a JSON object")
    example = f"identifier {entry['identifier']}" if "identifier" in entry else f"line {line_number}"
    missing = [field for field in ("identifier", "sentence", "label") if field not in entry]
    if missing:
        raise DataFormatError(f"{filename}: {example} lacks {missing}")
    if entry["label"] not in LABELS:
        raise DataFormatError(f"{filename}: {example} has label {entry['label']!r}, expected 'True' or 'False'")
    return {"identifier": entry["identifier"], "sentence": entry["sentence"], "label": LABELS[entry["label"]]}
