import numpy as np
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import IGNORE_INDEX, load_tokenizer
from paddlenlp_ext.tasks.vqa.answers import soft_scores
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset


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
