import numpy as np
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import nlvr2_image_names
from paddlenlp_ext.tasks.nlvr2.dataset import Nlvr2Dataset


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


def test_nlvr2_finetune_and_pretraining_examples(nlvr2_records, nlvr2_features, tokenizer):
    record = nlvr2_records[1]
    example = Nlvr2Dataset(nlvr2_records, nlvr2_features, tokenizer)[1]
    assert tokens(tokenizer, example["input_ids"]) == ["[CLS]", *tokenizer.tokenize(record["sentence"]), "[SEP]"]
    assert (example["token_type_ids"] == 0).all()
    assert example["labels"] == record["label"] and example["identifier"] == record["identifier"]
    pretraining = Nlvr2Dataset(nlvr2_records, nlvr2_features, tokenizer, pretraining=True)[1]
    assert pretraining["sentence_image_labels"] == record["label"] and "labels" not in pretraining
    assert len(pretraining["mlm_labels"]) == len(example["input_ids"])


def test_nlvr2_reads_left_then_right_image(sample_dir, nlvr2_features, tokenizer):
    records = load_dataset("nlvr2", splits="dev", data_dir=str(sample_dir / "nlvr2"))
    dataset = Nlvr2Dataset(records, nlvr2_features, tokenizer)
    left, right = (np.load(nlvr2_features.path(n)) for n in nlvr2_image_names(records[3]["identifier"]))
    example = dataset[3]
    assert len(example["visual_embeds"]) == 2
    np.testing.assert_array_equal(example["visual_embeds"][0], left)
    np.testing.assert_array_equal(example["visual_embeds"][1], right)
    assert example["visual_token_type_ids"].tolist() == [0] * len(left) + [1] * len(right)
