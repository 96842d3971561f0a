"""COCO caption-pair examples for pretraining (masked LM + does caption B describe the image of caption A)."""

from collections import defaultdict

import numpy as np

from ...data import DataFormatError, TaskDataset, build_text, truncate_pair_from_front


class CocoCaptionsDataset(TaskDataset):
    """One example per caption A: ``[CLS] A [SEP] B [SEP]`` (token types 0 then 1) with the boxes of A's image.

    With probability ``negative_probability`` B is a caption of another image (``sentence_image_labels`` 0), else
    another caption of the same image (1); B is drawn again every epoch (see ``set_epoch``). The pair is cut from
    the front of the longer text to ``max_seq_length``; both texts are masked for MLM (``mlm_labels``). Visual
    token type 0. Other arguments: see ``TaskDataset``.
    """

    def __init__(self, records, features, tokenizer, negative_probability: float = 0.5, **kwargs):
        super().__init__(records, features, tokenizer, **kwargs)
        self.negative_probability = negative_probability
        captions_of = defaultdict(list)
        for index, record in enumerate(self.records):
            captions_of[record["image_name"]].append(index)
        if len(captions_of) < 2:
            raise DataFormatError("caption pairs need captions of at least two images to draw negatives from")
        self._captions_of = dict(captions_of)

    def image_names(self, record: dict) -> tuple[str]:
        return (record["image_name"],)

    def example_id(self, record: dict) -> str:
        return f"caption_id {record['caption_id']}"

    def _pair(self, index: int, rng: np.random.Generator) -> tuple[int, int]:
        """Index of caption B and the sentence-image label."""
        image_name = self.records[index]["image_name"]
        if rng.random() < self.negative_probability:
            while True:
                other = int(rng.integers(len(self.records)))
                if self.records[other]["image_name"] != image_name:
                    return other, 0
        same_image = [other for other in self._captions_of[image_name] if other != index]
        # An image with a single caption pairs it with itself: still a true description of the image.
        return (int(rng.choice(same_image)) if same_image else index), 1

    def example(self, index: int) -> dict:
        record = self.records[index]
        (visual_embeds,) = self.load_visual(record)
        rng = self.rng(index)
        other, sentence_image_label = self._pair(index, rng)
        first, second = truncate_pair_from_front(
            self.tokenizer.tokenize(record["caption"]),
            self.tokenizer.tokenize(self.records[other]["caption"]),
            self.max_seq_length - 3,
        )
        text = build_text(self.tokenizer, first, second)
        input_ids, mlm_labels = self.masker(text.input_ids, text.maskable, rng)
        return {
            "input_ids": input_ids,
            "token_type_ids": text.token_type_ids,
            "mlm_labels": mlm_labels,
            "sentence_image_labels": sentence_image_label,
            "visual_embeds": visual_embeds,
            "visual_token_type_ids": np.zeros(len(visual_embeds), dtype=np.int64),
        }
