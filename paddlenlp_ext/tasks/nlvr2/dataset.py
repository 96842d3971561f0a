"""NLVR2 examples: fine-tuning (true/false) and task pretraining (masked LM + sentence-image)."""

import numpy as np

from ...data import TaskDataset, build_text, nlvr2_image_names


class Nlvr2Dataset(TaskDataset):
    """NLVR2 statements with the boxes of the left image (visual token type 0), then the right one (type 1):
    ``visual_embeds`` is the pair ``(left, right)``.

    Text is ``[CLS] sentence [SEP]``, token types 0. Fine-tuning (default): ``labels`` is 1 when the statement is
    true. Task pretraining (``pretraining=True``): the sentence is masked for MLM (``mlm_labels``) and the truth
    label trains the sentence-image head (``sentence_image_labels``). Every example carries its ``identifier``.
    Other arguments: see ``TaskDataset``.
    """

    def __init__(self, records, features, tokenizer, pretraining=False, **kwargs):
        super().__init__(records, features, tokenizer, **kwargs)
        self.pretraining = pretraining

    def image_names(self, record: dict) -> tuple[str, str]:
        return nlvr2_image_names(record["identifier"])

    def example_id(self, record: dict) -> str:
        return f"identifier {record['identifier']}"

    def example(self, index: int) -> dict:
        record = self.records[index]
        left, right = self.load_visual(record)
        sentence = self.tokenizer.tokenize(record["sentence"])[: self.max_seq_length - 2]
        text = build_text(self.tokenizer, sentence)
        example = {
            "identifier": record["identifier"],
            "input_ids": text.input_ids,
            "token_type_ids": text.token_type_ids,
            "visual_embeds": (left, right),  # no concatenated copy: the collator places them one after the other
            "visual_token_type_ids": np.repeat(np.array([0, 1], dtype=np.int64), [len(left), len(right)]),
        }
        if self.pretraining:
            example["input_ids"], example["mlm_labels"] = self.masker(text.input_ids, text.maskable, self.rng(index))
            example["sentence_image_labels"] = record["label"]
        else:
            example["labels"] = record["label"]
        return example
