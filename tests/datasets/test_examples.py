import numpy as np
import paddle
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import (
    IGNORE_INDEX,
    LABEL_INPUTS,
    MODEL_INPUTS,
    CocoCaptionsDataset,
    Nlvr2Dataset,
    VisualBertCollator,
    VqaDataset,
    load_tokenizer,
    truncate_pair_from_front,
)
from paddlenlp_ext.datasets import DataFormatError, RegionFeatures
from paddlenlp_ext.vqa.answers import soft_scores


@pytest.fixture(scope="module")
def vqa_records(sample_dir):
    return load_dataset("vqa2", splits="train", data_dir=str(sample_dir / "coco"))


@pytest.fixture(scope="module")
def nlvr2_records(sample_dir):
    return load_dataset("nlvr2", splits="train", data_dir=str(sample_dir / "nlvr2"))


@pytest.fixture(scope="module")
def coco_dataset(sample_dir, tokenizer):
    records = load_dataset("coco_captions", splits="train", data_dir=str(sample_dir / "coco"))
    return CocoCaptionsDataset(records, RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100"), tokenizer)


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


def test_vqa_finetune_example(vqa_records, vqa_features, tokenizer, answers):
    example = VqaDataset(vqa_records, vqa_features, tokenizer, answers)[5]
    record = vqa_records[5]
    assert tokens(tokenizer, example["input_ids"]) == ["[CLS]", *record["question_tokens"], "?", "[MASK]", "[SEP]"]
    assert (example["token_type_ids"] == 0).all() and (example["visual_token_type_ids"] == 0).all()
    np.testing.assert_array_equal(example["visual_embeds"], vqa_features.load(record["image_name"]))
    np.testing.assert_array_equal(example["labels"], soft_scores(record["answers"], answers))
    assert example["labels"].max() == 1.0  # most annotators agree in the sample
    assert example["question_id"] == record["question_id"]


def test_vqa_with_the_real_bert_vocab(vqa_records, vqa_features, bert_vocab_file):
    example = VqaDataset(vqa_records, vqa_features, load_tokenizer(bert_vocab_file))[0]
    # bert-base-uncased: [CLS] = 101, "?" = 1029, [MASK] = 103, [SEP] = 102
    assert example["input_ids"][0] == 101 and example["input_ids"][-3:].tolist() == [1029, 103, 102]


def test_vqa_test_split_has_no_labels(sample_dir, vqa_features, tokenizer, answers):
    records = load_dataset("vqa2", splits="test", data_dir=str(sample_dir / "coco"))
    example = VqaDataset(records, vqa_features, tokenizer, answers)[0]
    assert "labels" not in example and example["question_id"] == records[0]["question_id"]


def test_vqa_task_pretraining_appends_one_human_answer(vqa_records, vqa_features, tokenizer):
    dataset = VqaDataset(vqa_records, vqa_features, tokenizer, pretraining=True, mlm_probability=0.0)
    for index in range(20):
        record, example = vqa_records[index], dataset[index]
        text = tokens(tokenizer, example["input_ids"])
        question_end = 1 + len(record["question_tokens"])
        assert text[:question_end] == ["[CLS]", *record["question_tokens"]] and text[question_end] == "?"
        assert " ".join(text[question_end + 1 : -1]) in record["answers"] and text[-1] == "[SEP]"
        assert "labels" not in example and "sentence_image_labels" not in example
        assert (example["mlm_labels"] == IGNORE_INDEX).all()


def test_nlvr2_finetune_and_pretraining_examples(nlvr2_records, nlvr2_features, tokenizer):
    record = nlvr2_records[1]
    example = Nlvr2Dataset(nlvr2_records, nlvr2_features, tokenizer)[1]
    assert tokens(tokenizer, example["input_ids"]) == ["[CLS]", *tokenizer.tokenize(record["sentence"]), "[SEP]"]
    assert (example["token_type_ids"] == 0).all()
    assert example["labels"] == record["label"] and example["identifier"] == record["identifier"]
    pretraining = Nlvr2Dataset(nlvr2_records, nlvr2_features, tokenizer, pretraining=True)[1]
    assert pretraining["sentence_image_labels"] == record["label"] and "labels" not in pretraining
    assert len(pretraining["mlm_labels"]) == len(example["input_ids"])


def test_coco_pairs_layout_and_labels(coco_dataset, tokenizer):
    no_masking = CocoCaptionsDataset(
        coco_dataset.records, coco_dataset.features, tokenizer, mlm_probability=0.0, max_seq_length=512
    )
    captions_of = {}
    for record in no_masking.records:
        captions_of.setdefault(record["image_name"], set()).add(" ".join(tokenizer.tokenize(record["caption"])))
    for index in range(40):
        example = no_masking[index]
        text = tokens(tokenizer, example["input_ids"])
        first_sep = text.index("[SEP]")
        first, second = " ".join(text[1:first_sep]), " ".join(text[first_sep + 1 : -1])
        assert first == " ".join(tokenizer.tokenize(no_masking.records[index]["caption"]))
        assert text[0] == "[CLS]" and text[-1] == "[SEP]"
        assert example["token_type_ids"].tolist() == [0] * (first_sep + 1) + [1] * (len(text) - first_sep - 1)
        same_image = second in captions_of[no_masking.records[index]["image_name"]]
        assert example["sentence_image_labels"] == int(same_image)


def test_coco_negatives_are_half_and_resampled_every_epoch(coco_dataset):
    def labels(epoch):
        coco_dataset.set_epoch(epoch)
        return np.array([coco_dataset[i]["sentence_image_labels"] for i in range(len(coco_dataset))])

    epoch0, epoch0_again, epoch1 = labels(0), labels(0), labels(1)
    n = len(epoch0)
    assert n >= 100
    # 4 standard deviations of a fair coin over n draws
    assert abs(epoch0.mean() - 0.5) < 2 / np.sqrt(n) and abs(epoch1.mean() - 0.5) < 2 / np.sqrt(n)
    np.testing.assert_array_equal(epoch0, epoch0_again)
    assert abs((epoch0 != epoch1).mean() - 0.5) < 2 / np.sqrt(n)
    coco_dataset.set_epoch(0)


def test_pair_truncation_cuts_the_front_of_the_longer_text():
    first, second = truncate_pair_from_front(list("abcdefgh"), list("xyz"), 7)
    assert (first, second) == (list("efgh"), list("xyz"))
    first, second = truncate_pair_from_front(list("abcdef"), list("uvwxyz"), 6)
    assert (first, second) == (list("def"), list("xyz"))
    assert truncate_pair_from_front(list("ab"), list("xy"), 10) == (list("ab"), list("xy"))


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
        size, num_boxes = len(example["input_ids"]), len(example["visual_embeds"])
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


def test_vocab_without_mask_token_is_named(tmp_path, sample_dir, vqa_records, vqa_features, tokenizer):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(t for t in (sample_dir / "vocab.txt").read_text().split("\n") if t != "[MASK]"))
    with pytest.raises(DataFormatError, match=r"vocab .*vocab\.txt lacks the special tokens \['\[MASK\]'\]"):
        load_tokenizer(str(vocab))
    from paddlenlp.transformers import BertTokenizer

    with pytest.raises(DataFormatError, match=r"vocab\.txt lacks"):
        VqaDataset(vqa_records, vqa_features, BertTokenizer(vocab_file=str(vocab)))
