"""VQA v2 examples: fine-tuning (soft-score answers) and task pretraining (masked LM)."""

import numpy as np

from ...data import DataFormatError, TaskDataset, build_text
from .answers import AnswerVocab, soft_scores


class VqaDataset(TaskDataset):
    """VQA v2 questions with the 100 boxes of their image (visual token type 0).

    Fine-tuning (default): ``[CLS] wordpieces(" ".join(question_tokens)) ? [MASK] [SEP]``, token types 0; ``labels``
    are the soft scores over ``answers`` when given and the question has human answers (not on test).
    Task pretraining (``pretraining=True``): ``[CLS] question ? wordpieces(answer) [SEP]`` with one human answer
    drawn per epoch, masked for MLM (``mlm_labels``); no sentence-image label.
    Every example carries its ``question_id``. Other arguments: see ``TaskDataset``.
    """

    def __init__(self, records, features, tokenizer, answers: AnswerVocab | None = None, pretraining=False, **kwargs):
        super().__init__(records, features, tokenizer, **kwargs)
        self.answers = answers
        self.pretraining = pretraining

    def image_names(self, record: dict) -> tuple[str]:
        return (record["image_name"],)

    def example_id(self, record: dict) -> str:
        return f"question_id {record['question_id']}"

    def example(self, index: int) -> dict:
        record = self.records[index]
        (visual_embeds,) = self.load_visual(record)
        question = self.tokenizer.tokenize(" ".join(record["question_tokens"]))
        example = {"question_id": record["question_id"]}
        if self.pretraining:
            if not record["answers"]:
                raise DataFormatError(f"{self.example_id(record)} has no answers to pretrain on")
            rng = self.rng(index)
            answer = self.tokenizer.tokenize(record["answers"][rng.integers(len(record["answers"]))])
            text = build_text(self.tokenizer, (question + ["?"] + answer)[: self.max_seq_length - 2])
            example["input_ids"], example["mlm_labels"] = self.masker(text.input_ids, text.maskable, rng)
        else:
            # The answer is read off the [MASK] just before the final [SEP], so truncation must keep "? [MASK]".
            text = build_text(self.tokenizer, question[: self.max_seq_length - 4] + ["?", self.tokenizer.mask_token])
            example["input_ids"] = text.input_ids
            if self.answers is not None and record["answers"]:
                example["labels"] = soft_scores(record["answers"], self.answers)
        example["token_type_ids"] = text.token_type_ids
        example["visual_embeds"] = visual_embeds
        example["visual_token_type_ids"] = np.zeros(len(visual_embeds), dtype=np.int64)
        return example
