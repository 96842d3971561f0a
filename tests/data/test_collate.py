import numpy as np
import paddle

from paddlenlp_ext.data import IGNORE_INDEX, LABEL_INPUTS, MODEL_INPUTS, VisualBertCollator
from paddlenlp_ext.tasks.nlvr2.dataset import Nlvr2Dataset
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset


def test_vqa_batch_contract(vqa_records, vqa_features, tokenizer, answers):
    dataset = VqaDataset(vqa_records, vqa_features, tokenizer, answers)
    examples = [dataset[i] for i in range(8)]
    batch = VisualBertCollator(tokenizer.pad_token_id)(examples)
    length = max(len(e["input_ids"]) for e in examples)
    assert batch["input_ids"].shape == batch["token_type_ids"].shape == batch["attention_mask"].shape == (8, length)
    assert batch["visual_embeds"].shape == (8, 6, 2048) and batch["visual_embeds"].dtype == np.float32
    assert batch["labels"].shape == (8, len(answers)) and batch["labels"].dtype == np.float32
    assert batch["question_id"].tolist() == [e["question_id"] for e in examples]
    for row, example in enumerate(examples):
        size = len(example["input_ids"])
        assert batch["attention_mask"][row].tolist() == [1] * size + [0] * (length - size)
        assert (batch["input_ids"][row, size:] == tokenizer.pad_token_id).all()
        # the answer is read at attention_mask.sum() - 2: the [MASK] before the last [SEP]
        assert batch["input_ids"][row, batch["attention_mask"][row].sum() - 2] == tokenizer.mask_token_id
    for key in MODEL_INPUTS:
        assert key in batch and (batch[key].dtype == np.int64 or key == "visual_embeds")


def test_pretraining_labels_cover_text_and_boxes(nlvr2_records, nlvr2_features, tokenizer):
    # the sample's statements all have the same length: shorten three, so the batch has padding
    records = [dict(record) for record in nlvr2_records]
    for record in records[:3]:
        record["sentence"] = " ".join(record["sentence"].split()[:4])
    dataset = Nlvr2Dataset(records, nlvr2_features, tokenizer, pretraining=True, mlm_probability=0.5)
    indices = [0, 1, 2, 3, 4, 5]
    examples = [dataset[i] for i in indices]
    batch = VisualBertCollator(tokenizer.pad_token_id)(examples)
    length, boxes = batch["input_ids"].shape[1], batch["visual_embeds"].shape[1]
    assert batch["labels"].shape == (6, length + boxes) and batch["labels"].dtype == np.int64
    assert (batch["labels"][:, length:] == IGNORE_INDEX).all()
    padding = batch["attention_mask"] == 0
    assert padding.any() and (batch["labels"][:, :length][padding] == IGNORE_INDEX).all()
    for row, example in enumerate(examples):
        size, num_boxes = len(example["input_ids"]), len(example["visual_token_type_ids"])
        np.testing.assert_array_equal(batch["labels"][row, :size], example["mlm_labels"])
        assert batch["visual_attention_mask"][row].tolist() == [1] * num_boxes + [0] * (boxes - num_boxes)
        assert (batch["visual_embeds"][row, num_boxes:] == 0).all()
        assert batch["visual_token_type_ids"][row, :num_boxes].tolist() == example["visual_token_type_ids"].tolist()
    assert (batch["labels"][:, :length] != IGNORE_INDEX).any()
    assert batch["sentence_image_labels"].tolist() == [records[i]["label"] for i in indices]
    assert batch["identifier"] == [records[i]["identifier"] for i in indices]


def test_dataloader_with_workers_yields_the_contract(coco_dataset, tokenizer):
    loader = paddle.io.DataLoader(
        coco_dataset, batch_size=4, num_workers=2, collate_fn=VisualBertCollator(tokenizer.pad_token_id)
    )
    batch = next(iter(loader))
    assert set(batch) == set(MODEL_INPUTS) | set(LABEL_INPUTS)
    assert batch["labels"].shape == [4, batch["input_ids"].shape[1] + batch["visual_embeds"].shape[1]]
    expected = VisualBertCollator(tokenizer.pad_token_id)([coco_dataset[i] for i in range(4)])
    np.testing.assert_array_equal(batch["labels"].numpy(), expected["labels"])
