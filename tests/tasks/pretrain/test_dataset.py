import numpy as np

from paddlenlp_ext.tasks.pretrain.dataset import CocoCaptionsDataset


def tokens(tokenizer, ids):
    return tokenizer.convert_ids_to_tokens([int(i) for i in ids])


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
