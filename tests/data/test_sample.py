"""The sample's answers and labels follow from its features: decode the objects back out of the .npy files and
re-derive every VQA answer and NLVR2 label from them, independently of the writer's own bookkeeping."""

import json
import re
from collections import Counter

import numpy as np
import pytest

from paddlenlp_ext.data import RegionFeatures, nlvr2_image_names
from paddlenlp_ext.data.sample import BACKGROUND, COLOURS, NUMBER_WORDS, SHAPES, SampleConfig, write_sample


def decode(features: np.ndarray) -> list:
    """(shape, colour) of every box that is not background: the largest shape and colour directions."""
    objects = []
    for box in features:
        if box[BACKGROUND] > SampleConfig.signal / 2:
            continue
        colours = box[len(SHAPES) : len(SHAPES) + len(COLOURS)]
        objects.append((SHAPES[int(np.argmax(box[: len(SHAPES)]))], COLOURS[int(np.argmax(colours))]))
    return objects


def vqa_answer(question: str, objects: list) -> str:
    words = question.lower().rstrip("?").split()
    if question.startswith("How many"):
        return str(len(objects))
    if question.startswith("Are there at least"):
        return "yes" if len(objects) >= NUMBER_WORDS.index(words[4]) else "no"
    if question.startswith("What color is the"):
        return next(colour for shape, colour in objects if shape == words[-1])
    if question.startswith("What shape is the"):
        return next(shape for shape, colour in objects if colour == words[-2])
    raise AssertionError(f"unexpected question {question!r}")


def test_vqa_answers_follow_from_the_features(sample_dir):
    features = RegionFeatures(str(sample_dir / "coco"), "coco_detectron_fix_100")
    imdb = np.load(sample_dir / "coco" / "imdb" / "imdb_val2014.npy", allow_pickle=True)[1:]
    kinds = Counter()
    for entry in imdb:
        objects = decode(features.load(entry["image_name"]))
        assert 1 <= len(objects) <= SampleConfig.max_objects
        majority = Counter(entry["answers"]).most_common(1)[0][0]
        assert majority == vqa_answer(entry["question_str"], objects), entry["question_str"]
        kinds[entry["question_str"].split()[0]] += 1
    assert set(kinds) == {"How", "Are", "What"}


def test_nlvr2_labels_follow_from_the_features(sample_dir):
    features = RegionFeatures(str(sample_dir / "nlvr2"), "nlvr2_detectron_fix_144")
    sides = Counter()
    for split in ("train", "dev", "test1"):
        for line in (sample_dir / "nlvr2" / f"{split}.json").read_text().splitlines():
            example = json.loads(line)
            left, right = (decode(features.load(name)) for name in nlvr2_image_names(example["identifier"]))
            side, number = re.fullmatch(r"the (left|right|two) images? contains? at least (\w+) objects \.",
                                        example["sentence"]).groups()  # fmt: skip
            count = {"left": len(left), "right": len(right), "two": len(left) + len(right)}[side]
            assert example["label"] == str(count >= NUMBER_WORDS.index(number)), example["identifier"]
            sides[side] += 1
    assert set(sides) == {"left", "right", "two"}


def test_labels_are_balanced_and_the_writer_is_deterministic(tmp_path):
    config = SampleConfig(train_images=20, val_images=6, minival_images=2, test_images=2, nlvr2_train_sets=300,
                          nlvr2_eval_sets=2, vqa_boxes=4, nlvr2_boxes=4)  # fmt: skip
    summary = write_sample(str(tmp_path / "a"), config)
    # 1,200 statements, each True with probability 1/2: 0.5 +- 0.06 is more than 4 standard deviations.
    assert summary["nlvr2_majority_baseline"] < 0.56
    again = write_sample(str(tmp_path / "b"), config)
    assert again == summary
    for name in ("nlvr2/train.json", "coco/imdb/imdb_train2014.npy", "vocab.txt"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("max_objects", [1, 5])
def test_unsupported_object_counts_are_refused(tmp_path, max_objects):
    with pytest.raises(ValueError, match="max_objects must be 2 .. 4"):
        write_sample(str(tmp_path), SampleConfig(max_objects=max_objects))
