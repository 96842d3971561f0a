"""The input pipeline end to end: the batches a DataLoader yields, with and without workers, are the files padded
by hand, byte for byte (every key: dtype, shape, bytes)."""

import gc
import json
from collections import Counter

import numpy as np
import paddle
import pytest
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import BatchLoader, RegionFeatures, TaskDataset, VisualBertCollator
from paddlenlp_ext.tasks.nlvr2.dataset import Nlvr2Dataset
from paddlenlp_ext.tasks.pretrain.dataset import CocoCaptionsDataset
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset

BATCH_SIZE = 8


def shuffled_batches(dataset):
    order = np.random.default_rng(1).permutation(len(dataset)).tolist()
    return [order[i : i + BATCH_SIZE] for i in range(0, len(order), BATCH_SIZE)]


def paddle_default_loader(dataset, tokenizer, batches):
    """Paddle's own DataLoader, with its defaults (shared memory on), over fixed batches."""
    collator = VisualBertCollator(tokenizer.pad_token_id)
    return paddle.io.DataLoader(dataset, batch_sampler=batches, num_workers=2, return_list=True, collate_fn=collator)


def as_numpy(batch: dict) -> dict:
    return {key: value.numpy() if isinstance(value, paddle.Tensor) else value for key, value in batch.items()}


def assert_same_batch(got: dict, expected: dict):
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            assert got[key].tobytes() == value.tobytes(), key
        else:
            assert got[key] == value, key


def pad(rows, fill, dtype, length=None):
    """Rows of different lengths (lists or arrays) as one [len(rows), length, ...] array."""
    length = length or max(len(row) for row in rows)
    first = np.asarray(rows[0])
    out = np.full((len(rows), length, *first.shape[1:]), fill, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def by_hand(texts, images, image_types, extra):
    """A batch from wordpiece texts, per-example lists of feature arrays and their visual token types."""
    visual = [np.concatenate(example_images) for example_images in images]
    return {
        "input_ids": pad(texts, 0, np.int64),  # [PAD] is id 0 in the sample vocab (checked below)
        "token_type_ids": pad([[0] * len(text) for text in texts], 0, np.int64),
        "attention_mask": pad([[1] * len(text) for text in texts], 0, np.int64),
        "visual_embeds": pad(visual, 0, np.float32),
        "visual_token_type_ids": pad(image_types, 0, np.int64),
        "visual_attention_mask": pad([[1] * len(v) for v in visual], 0, np.int64),
        **extra,
    }


@pytest.fixture(scope="module")
def vqa(sample_dir, tokenizer, answers):
    """VQA fine-tuning on the sample's train split and the batch of any indices, built from the imdb and feature
    files directly."""
    coco = sample_dir / "coco"
    entries = np.load(coco / "imdb" / "imdb_train2014.npy", allow_pickle=True)[1:]
    vocab = (coco / "extras" / "vocabs" / "answers_vqa.txt").read_text().splitlines()
    features = RegionFeatures(str(coco), "coco_detectron_fix_100")
    dataset = VqaDataset(load_dataset("vqa2", splits="train", data_dir=str(coco)), features, tokenizer, answers)
    assert [r["question_id"] for r in dataset.records] == [int(e["question_id"]) for e in entries]
    assert tokenizer.convert_tokens_to_ids("[PAD]") == 0

    def expected(indices):
        texts, images, scores = [], [], np.zeros((len(indices), len(vocab)), dtype=np.float32)
        for row, index in enumerate(indices):
            entry = entries[index]
            question = tokenizer.tokenize(" ".join(entry["question_tokens"]))
            texts.append(tokenizer.convert_tokens_to_ids(["[CLS]", *question, "?", "[MASK]", "[SEP]"]))
            images.append([np.load(features.path(entry["image_name"]))])
            for answer, count in Counter(entry["answers"]).items():
                if answer in vocab and vocab.index(answer) != 0:
                    scores[row, vocab.index(answer)] = min(0.3 * count, 1.0)
        question_ids = np.array([entry["question_id"] for entry in entries[indices]], dtype=np.int64)
        image_types = [[0] * len(example_images[0]) for example_images in images]
        return by_hand(texts, images, image_types, {"labels": scores, "question_id": question_ids})

    return dataset, expected


@pytest.fixture(scope="module")
def nlvr2(sample_dir, tokenizer):
    """NLVR2 fine-tuning on the sample's train split and the batch of any indices, built from the JSON lines and
    the two feature files of each pair."""
    folder = sample_dir / "nlvr2"
    lines = [json.loads(line) for line in (folder / "train.json").read_text().splitlines() if line.strip()]
    features = RegionFeatures(str(folder), "nlvr2_detectron_fix_144")
    dataset = Nlvr2Dataset(load_dataset("nlvr2", splits="train", data_dir=str(folder)), features, tokenizer)
    assert [r["identifier"] for r in dataset.records] == [line["identifier"] for line in lines]

    def expected(indices):
        texts, images, image_types = [], [], []
        for index in indices:
            line = lines[index]
            texts.append(tokenizer.convert_tokens_to_ids(["[CLS]", *tokenizer.tokenize(line["sentence"]), "[SEP]"]))
            pair = line["identifier"].rsplit("-", 1)[0]
            left, right = (np.load(features.path(f"{pair}-img{side}.png")) for side in (0, 1))
            images.append([left, right])
            image_types.append([0] * len(left) + [1] * len(right))
        labels = np.array([lines[index]["label"] == "True" for index in indices], dtype=np.int64)
        identifiers = [lines[index]["identifier"] for index in indices]
        return by_hand(texts, images, image_types, {"labels": labels, "identifier": identifiers})

    return dataset, expected


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("task", ["vqa", "nlvr2"])
def test_batches_are_the_files_padded_by_hand(request, tokenizer, task, num_workers):
    dataset, expected = request.getfixturevalue(task)
    loader = BatchLoader(dataset, VisualBertCollator(tokenizer.pad_token_id), num_workers)
    for epoch in range(2):  # one loader, new workers each epoch, as in training
        dataset.set_epoch(epoch)
        batches = shuffled_batches(dataset)
        for indices, batch in zip(batches, loader.iterate(batches), strict=True):
            assert_same_batch(as_numpy(batch), expected(indices))


@pytest.mark.parametrize("task", ["vqa", "nlvr2"])
def test_batches_from_paddles_default_loader_are_the_same(request, tokenizer, task):
    dataset, expected = request.getfixturevalue(task)
    batches = shuffled_batches(dataset)
    for indices, batch in zip(batches, paddle_default_loader(dataset, tokenizer, batches), strict=True):
        assert_same_batch(as_numpy(batch), expected(indices))


def test_pretraining_batches_with_workers_hold_each_epochs_examples(sample_dir, tokenizer):
    coco = sample_dir / "coco"
    features = RegionFeatures(str(coco), "coco_detectron_fix_100")
    records = load_dataset("coco_captions", splits="train", data_dir=str(coco))
    dataset = CocoCaptionsDataset(records, features, tokenizer, max_seq_length=20)
    loader = BatchLoader(dataset, VisualBertCollator(tokenizer.pad_token_id), 2)
    for epoch in range(2):  # captions B and the masking are drawn again each epoch
        dataset.set_epoch(epoch)
        batches = shuffled_batches(dataset)
        for indices, batch in zip(batches, loader.iterate(batches), strict=True):
            examples = [dataset[i] for i in indices]  # the masked text of this epoch, built here
            texts = [example["input_ids"] for example in examples]
            images = [[np.load(features.path(records[i]["image_name"]))] for i in indices]
            image_types = [[0] * len(example_images[0]) for example_images in images]
            length, boxes = max(len(text) for text in texts), max(len(image[0]) for image in images)
            hand = by_hand(texts, images, image_types, {})
            hand["token_type_ids"] = pad([example["token_type_ids"] for example in examples], 0, np.int64)
            hand["labels"] = pad([example["mlm_labels"] for example in examples], -100, np.int64, length + boxes)
            hand["sentence_image_labels"] = np.array([e["sentence_image_labels"] for e in examples], dtype=np.int64)
            assert_same_batch(as_numpy(batch), hand)


class _FreezeCounts(TaskDataset):
    """A dataset whose examples report how many objects the garbage collector leaves alone where they are built."""

    def image_names(self, record):
        return (record["image_name"],)

    def example_id(self, record):
        return record["question_id"]

    def example(self, index):
        (visual_embeds,) = self.load_visual(self.records[index])
        return {
            "input_ids": np.array([2, 3], dtype=np.int64),
            "token_type_ids": np.zeros(2, dtype=np.int64),
            "visual_embeds": visual_embeds,
            "visual_token_type_ids": np.zeros(len(visual_embeds), dtype=np.int64),
            "frozen": gc.get_freeze_count(),
        }


def test_workers_leave_the_objects_they_inherit_to_the_garbage_collector(vqa_records, vqa_features, tokenizer):
    dataset = _FreezeCounts(vqa_records, vqa_features, tokenizer)
    frozen_here = gc.get_freeze_count()
    for num_workers in (0, 2):
        loader = BatchLoader(dataset, VisualBertCollator(tokenizer.pad_token_id), num_workers)
        for batch in loader.iterate(shuffled_batches(dataset)):
            counts = batch["frozen"].numpy()
            # a worker's full collection would write to (and so copy) every page of the parent's heap
            assert (counts > 0).all() if num_workers else (counts == frozen_here).all()
    assert gc.get_freeze_count() == frozen_here  # the main process is left as it was
