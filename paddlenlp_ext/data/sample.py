"""Small synthetic VQA2, COCO captions and NLVR2 datasets in the real folder layouts and file formats.

``python -m paddlenlp_ext.data.sample --out DIR`` writes, deterministically and in seconds::

    DIR/vocab.txt                   WordPiece vocab covering every text below
    DIR/sample_config.json          the settings and majority baselines of this sample
    DIR/coco/                       as the original X_COCO folder: VQA2 and COCO captions
      imdb/imdb_{train2014,val2014,trainval2014,minival2014,test2015}.npy
      extras/vocabs/answers_vqa.txt
      Questions/v2_OpenEnded_mscoco_val2014_questions.json      official-format val questions
      Annotations/v2_mscoco_val2014_annotations.json            official-format val annotations
      annotations/captions_{train,val}2014.json
      data/detectron_fix_100/fc6/vqa/{train2014,val2014,test2015}/COCO_*.npy        [boxes, 2048]
      data/detectron_fix_144/nlvr2/{train,val}/feature_1024dim/COCO_*.npy           [boxes, 1024]
    DIR/nlvr2/                      as the original X_NLVR folder
      {train,dev,test1}.json
      data/detectron_fix_144/{train,dev,test1}/feature_1024dim/*-img{0,1}.png.npy   [<=boxes, 1024]

Every image is a few objects (a shape and a colour each). Each object's box feature is the one-hot direction of
its shape plus that of its colour, other boxes carry a background direction, all plus Gaussian noise. Questions
ask about colours, shapes and counts; NLVR2 statements say how many objects the left image, the right image or the
two together contain at least. Answers and labels follow from the features, so a working model learns them, and a
model that does not see the right boxes (or cannot tell left from right) stays near the text-only baseline.

Statements and yes/no questions are about counts rather than the presence of a named object on purpose: a small
VisualBERT trained from scratch (HF's as well as this one) learns counting in a few hundred steps but was near
chance on "one of the images contains a red object" after 500 and on "the left image contains a red object" after
2,000, too slow for a demo.
"""

import argparse
import json
import os
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, replace

import numpy as np
from tqdm import tqdm

from ..files import atomic_file
from .features import FEATURE_TYPES, RegionFeatures, coco_image_name, nlvr2_image_names

SHAPES = ("cube", "sphere", "cylinder", "cone")
COLOURS = ("red", "blue", "green", "yellow", "purple")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight")
BACKGROUND = len(SHAPES) + len(COLOURS)  # feature index of the background direction
OUT_OF_VOCABULARY_ANSWER = "not sure"  # some annotators say this; it maps to <unk>
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class SampleConfig:
    """Sizes of the sample; the defaults train a small model to >= 0.9 accuracy in minutes."""

    seed: int = 0
    train_images: int = 700  # COCO train2014 images: VQA train questions and train captions
    val_images: int = 150  # val2014 images: VQA val questions and val captions
    minival_images: int = 50  # the first val images, whose questions form minival
    test_images: int = 60  # test2015 images: VQA questions without answers
    questions_per_image: int = 5
    captions_per_image: int = 5
    vqa_boxes: int = 12  # boxes per image in the 2048-d features (real: 100)
    nlvr2_boxes: int = 8  # most boxes per image in the 1024-d features (real: up to 144)
    nlvr2_train_sets: int = 1000  # a set is statements_per_set statements over pairs_per_set image pairs
    nlvr2_eval_sets: int = 100  # sets in dev and in test1 each
    pairs_per_set: int = 4
    # More than one statement per pair biases the labels: some truth values of two statements exclude each other.
    statements_per_set: int = 1
    max_objects: int = 4  # objects per image: 1 .. max_objects
    # Size of each shape/colour/background direction in a box feature. At 1 the projected boxes are on the scale of
    # the freshly initialised visual token type embeddings, so a model from scratch soon tells the left image from
    # the right; at 5 the types are a small fraction of each box and NLVR2 learning stalls for hundreds of steps.
    signal: float = 1.0
    # Standard deviation of the feature noise. Over 1024-2048 dimensions even small noise adds up (its norm is
    # noise * sqrt(dim)); kept well below the signal so that boxes are not fingerprints a model could memorise
    # (at 0.1 a small model memorised the train split and stayed at chance on dev).
    noise: float = 0.002

    def scaled(self, factor: float) -> "SampleConfig":
        """The same sample with ``factor`` times the images and NLVR2 sets."""
        return replace(
            self,
            train_images=round(self.train_images * factor),
            val_images=round(self.val_images * factor),
            minival_images=round(self.minival_images * factor),
            test_images=round(self.test_images * factor),
            nlvr2_train_sets=round(self.nlvr2_train_sets * factor),
            nlvr2_eval_sets=round(self.nlvr2_eval_sets * factor),
        )


def region_features(objects, num_boxes: int, dim: int, config: SampleConfig, rng: np.random.Generator) -> np.ndarray:
    """``[num_boxes, dim]`` float32 features: one box per object in random rows, background in the others."""
    features = rng.standard_normal((num_boxes, dim), dtype=np.float32) * np.float32(config.noise)
    rows = rng.permutation(num_boxes)
    for row, (shape, colour) in zip(rows, objects):
        features[row, SHAPES.index(shape)] += config.signal
        features[row, len(SHAPES) + COLOURS.index(colour)] += config.signal
    features[rows[len(objects) :], BACKGROUND] += config.signal
    return features


def random_objects(rng: random.Random, max_objects: int) -> list[tuple[str, str]]:
    """1 .. max_objects random (shape, colour) objects."""
    # Drawing from a few shapes and colours per image makes counts above one common.
    shapes = rng.sample(SHAPES, rng.randint(1, 3))
    colours = rng.sample(COLOURS, rng.randint(1, 3))
    return [(rng.choice(shapes), rng.choice(colours)) for _ in range(rng.randint(1, max_objects))]


# --- VQA -------------------------------------------------------------------------------------------------------


def answer_vocabulary(max_objects: int) -> list[str]:
    """``<unk>`` first, then every answer a sample question can have."""
    return ["<unk>", "yes", "no", *[str(n) for n in range(max_objects + 1)], *COLOURS, *SHAPES]


QUESTION_KINDS = 4


def vqa_question(objects, kind: int, max_objects: int, rng: random.Random) -> dict | None:
    """A random question of ``kind`` (0 .. QUESTION_KINDS - 1) about ``objects`` (of an image with at most
    ``max_objects``), with its answer, question type and answer type; None if ``objects`` allow no such question."""
    if kind in (0, 1):
        # Ask for the colour of a shape (kind 0) or the shape of a colour (kind 1), where all the objects of that
        # shape (colour) share one colour (shape), so the answer is well defined.
        given, asked = (0, 1) if kind == 0 else (1, 0)  # positions in a (shape, colour) object
        partners = {}
        for obj in objects:
            partners.setdefault(obj[given], set()).add(obj[asked])
        defined = sorted(value for value, found in partners.items() if len(found) == 1)
        if not defined:
            return None
        value = rng.choice(defined)
        (answer,) = partners[value]
        if kind == 0:
            return _question(f"What color is the {value}?", answer, "what color is the", "other")
        return _question(f"What shape is the {value} object?", answer, "what shape is the", "other")
    if kind == 2:
        # "yes" and "no" equally likely: the number asked about is at most the count or above it by a coin flip.
        count = len(objects)
        number = rng.randint(1, count) if rng.random() < 0.5 else rng.randint(count + 1, max_objects + 1)
        answer = "yes" if count >= number else "no"
        return _question(f"Are there at least {NUMBER_WORDS[number]} objects?", answer, "are there", "yes/no")
    return _question("How many objects are there?", str(len(objects)), "how many", "number")


def _question(question_str: str, answer: str, question_type: str, answer_type: str) -> dict:
    return {"question": question_str, "answer": answer, "question_type": question_type, "answer_type": answer_type}


def human_answers(answer: str, answer_type: str, rng: random.Random) -> list[str]:
    """Ten annotator answers: mostly ``answer``, some a plausible other answer, a few out of the vocabulary."""
    if answer_type == "yes/no":
        others = ["no" if answer == "yes" else "yes"]
    elif answer_type == "number":
        others = [str(n) for n in (int(answer) - 1, int(answer) + 1) if n >= 0]
    else:
        others = [a for a in (COLOURS if answer in COLOURS else SHAPES) if a != answer]
    answers = []
    for _ in range(10):
        draw = rng.random()
        if draw < 0.85:
            answers.append(answer)
        elif draw < 0.96:
            answers.append(rng.choice(others))
        else:
            answers.append(OUT_OF_VOCABULARY_ANSWER)
    return answers


def question_tokens(question_str: str) -> list[str]:
    """Pythia's question tokens: lowercased words, '?' and ',' dropped."""
    return re.findall(r"[a-z0-9']+", question_str.lower())


def vqa_entries(images, split: str, config: SampleConfig, vocabulary: set, rng: random.Random) -> list[dict]:
    """imdb entries (questions) for ``images``: a list of (image_id, objects).

    The kinds of question take turns, so no kind of answer dominates; a question already asked is not repeated.
    """
    entries = []
    for image_id, objects in images:
        image_name = coco_image_name(split, image_id)
        kinds = rng.sample(range(QUESTION_KINDS), QUESTION_KINDS)
        asked = set()
        for number in range(config.questions_per_image):
            question = vqa_question(objects, kinds[number % QUESTION_KINDS], config.max_objects, rng)
            if question is None or question["question"] in asked:
                continue
            asked.add(question["question"])
            entry = {
                "image_name": image_name,
                "image_id": image_id,
                "question_id": image_id * 1000 + number,
                "feature_path": image_name + ".npy",
                "question_str": question["question"],
                "question_tokens": question_tokens(question["question"]),
            }
            if split != "test2015":
                answers = human_answers(question["answer"], question["answer_type"], rng)
                entry["answers"] = answers
                entry["valid_answers"] = [answer for answer in answers if answer in vocabulary]
                # Kept for the official-format json; dropped before the imdb is saved.
                entry["_official"] = question
            entries.append(entry)
    return entries


def save_imdb(path: str, entries: list[dict], has_answer: bool) -> None:
    """Save ``entries`` as Pythia does: an object array whose element 0 is a header dict."""
    header = {"create_time": "sample", "dataset_name": "vqa", "version": 1, "has_answer": has_answer}
    array = np.empty(len(entries) + 1, dtype=object)
    array[0] = header
    for position, entry in enumerate(entries, start=1):
        array[position] = {key: value for key, value in entry.items() if not key.startswith("_")}
    with atomic_file(path, "wb") as f:
        np.save(f, array, allow_pickle=True)


def official_vqa_json(entries: list[dict]) -> tuple[dict, dict]:
    """Questions and annotations of ``entries`` in the official VQA v2 json format."""
    questions, annotations = [], []
    for entry in entries:
        official = entry["_official"]
        questions.append(
            {"image_id": entry["image_id"], "question": entry["question_str"], "question_id": entry["question_id"]}
        )
        answers = entry["answers"]
        annotations.append(
            {
                "question_id": entry["question_id"],
                "image_id": entry["image_id"],
                "question_type": official["question_type"],
                "answer_type": official["answer_type"],
                "multiple_choice_answer": Counter(answers).most_common(1)[0][0],
                "answers": [
                    {
                        "answer": answer,
                        "answer_confidence": "yes" if answer == official["answer"] else "maybe",
                        "answer_id": number,
                    }
                    for number, answer in enumerate(answers, start=1)
                ],
            }
        )
    common = {"info": {"description": "synthetic sample"}, "license": {}, "data_type": "mscoco"}
    return (
        {**common, "task_type": "Open-Ended", "data_subtype": "val2014", "questions": questions},
        {**common, "data_subtype": "val2014", "annotations": annotations},
    )


# --- COCO captions ---------------------------------------------------------------------------------------------


def captions(objects, count: int, rng: random.Random) -> list[str]:
    """``count`` different captions describing ``objects``."""
    texts = []
    for attempt in range(20 * count):
        order = rng.sample(objects, len(objects))
        listing = " and ".join(f"a {colour} {shape}" for shape, colour in order)
        shape, colour = order[0]
        number = NUMBER_WORDS[len(objects)]
        templates = (
            f"a picture of {listing} .",
            f"there are {number} objects in this image .",
            f"an image showing {number} objects including a {colour} {shape} .",
            f"a {colour} {shape} is in the picture .",
            f"{listing} on a plain background .",
        )
        text = templates[attempt % len(templates)]
        if text not in texts:
            texts.append(text)
        if len(texts) == count:
            break
    return texts


def coco_captions_json(images, split: str, config: SampleConfig, rng: random.Random) -> dict:
    """``captions_<split>.json`` content for ``images`` (a list of (image_id, objects))."""
    image_entries, annotations = [], []
    for image_id, objects in images:
        image_entries.append(
            {"id": image_id, "file_name": coco_image_name(split, image_id) + ".jpg", "width": 640, "height": 480}
        )
        for number, text in enumerate(captions(objects, config.captions_per_image, rng)):
            annotations.append({"id": image_id * 10 + number, "image_id": image_id, "caption": text})
    return {
        "info": {"description": "synthetic sample"},
        "licenses": [],
        "images": image_entries,
        "annotations": annotations,
    }


# --- NLVR2 -----------------------------------------------------------------------------------------------------


def random_claim(max_objects: int, rng: random.Random):
    """A statement about how many objects the left image, the right image or the two together contain (each image
    has 1 .. ``max_objects``), and the function that decides its truth for a (left objects, right objects) pair.

    Deciding "the left image contains at least three objects" takes telling the two images apart by their visual
    token types, and every statement needs both the number in the text and the boxes."""
    side = rng.randrange(3)
    if side == 2:
        number = rng.randint(2, 2 * max_objects - 1)
        return (
            f"the two images contain at least {NUMBER_WORDS[number]} objects .",
            lambda pair: len(pair[0]) + len(pair[1]) >= number,
        )
    number = rng.randint(2, max_objects)
    return (
        f"the {('left', 'right')[side]} image contains at least {NUMBER_WORDS[number]} objects .",
        lambda pair: len(pair[side]) >= number,
    )


def nlvr2_sets(split: str, num_sets: int, config: SampleConfig, rng: random.Random):
    """Examples and image pairs (named ``<split>-<set>-<pair>``) of one split.

    Each set has ``statements_per_set`` statements over ``pairs_per_set`` image pairs (as NLVR2 shares a sentence
    across pairs). Each pair is drawn until every statement has the truth value decided for it by a coin flip, so
    with one statement per set true and false are equally likely whatever the statement says.
    """
    examples, pairs = [], []
    for set_number in range(num_sets):
        set_pairs = None
        while set_pairs is None:
            claims = [random_claim(config.max_objects, rng) for _ in range(config.statements_per_set)]
            set_pairs = _pairs_for(claims, config, rng)
        for pair_number, pair in enumerate(set_pairs):
            pairs.append((f"{split}-{set_number}-{pair_number}", pair))
            for statement_number, (sentence, truth) in enumerate(claims):
                examples.append(
                    {
                        "identifier": f"{split}-{set_number}-{pair_number}-{statement_number}",
                        "sentence": sentence,
                        "label": "True" if truth(pair) else "False",
                        "writer": "sample",
                    }
                )
    return examples, pairs


def _pairs_for(claims, config: SampleConfig, rng: random.Random):
    """``pairs_per_set`` image pairs meeting coin-flipped truth values of ``claims``; None if some combination
    cannot be met (such as "the left image contains more objects" and "the right ..." both true)."""
    pairs = []
    for _ in range(config.pairs_per_set):
        wanted = [bool(rng.randrange(2)) for _ in claims]
        for _ in range(1000):
            pair = (random_objects(rng, config.max_objects), random_objects(rng, config.max_objects))
            if [truth(pair) for _, truth in claims] == wanted:
                pairs.append(pair)
                break
        else:
            return None
    return pairs


# --- writing ---------------------------------------------------------------------------------------------------


def write_features(features: RegionFeatures, image_name: str, array: np.ndarray) -> None:
    """Save ``array`` where ``features`` will look for ``image_name``."""
    with atomic_file(features.path(image_name), "wb") as f:
        np.save(f, array)


def write_json(path: str, content) -> None:
    """Save ``content`` as json at ``path``."""
    with atomic_file(path) as f:
        json.dump(content, f)


def write_lines(path: str, lines) -> None:
    """Save ``lines`` at ``path``, one a line."""
    with atomic_file(path) as f:
        f.writelines(line + "\n" for line in lines)


def wordpiece_vocab(texts) -> list[str]:
    """Special tokens, then every lowercased word and punctuation mark of ``texts`` (whole words only)."""
    words = set()
    for text in texts:
        words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    return [*SPECIAL_TOKENS, *sorted(words)]


def write_sample(out_dir: str, config: SampleConfig | None = None) -> dict:
    """Write the sample datasets to ``out_dir``; return the summary also saved as ``sample_config.json``."""
    config = config or SampleConfig()
    if config.vqa_boxes < config.max_objects or config.nlvr2_boxes < config.max_objects:
        raise ValueError(f"need at least max_objects={config.max_objects} boxes per image")
    if not 2 <= config.max_objects <= len(NUMBER_WORDS) // 2:
        raise ValueError(f"max_objects must be 2 .. {len(NUMBER_WORDS) // 2}, got {config.max_objects}")
    # Python's generator for the many small discrete draws (much faster there), numpy's for the feature noise.
    rng = random.Random(config.seed)
    feature_rng = np.random.default_rng(config.seed)
    coco_dir, nlvr2_dir = os.path.join(out_dir, "coco"), os.path.join(out_dir, "nlvr2")
    vqa_features = RegionFeatures(coco_dir, "coco_detectron_fix_100")
    coco_nlvr2_features = RegionFeatures(coco_dir, "coco_detectron_fix_144")
    nlvr2_features = RegionFeatures(nlvr2_dir, "nlvr2_detectron_fix_144")
    vqa_dim, nlvr2_dim = FEATURE_TYPES["coco_detectron_fix_100"].dim, FEATURE_TYPES["nlvr2_detectron_fix_144"].dim
    texts = []

    # Images: distinct COCO ids per split, as in COCO.
    images = {
        split: [(offset + number + 1, random_objects(rng, config.max_objects)) for number in range(count)]
        for split, offset, count in (
            ("train2014", 0, config.train_images),
            ("val2014", 300_000, config.val_images),
            ("test2015", 600_000, config.test_images),
        )
    }
    for split, split_images in images.items():
        for image_id, objects in tqdm(split_images, desc=f"features {split}", leave=False, disable=None):
            name = coco_image_name(split, image_id)
            write_features(
                vqa_features, name, region_features(objects, config.vqa_boxes, vqa_dim, config, feature_rng)
            )
            if split != "test2015":
                array = region_features(objects, config.nlvr2_boxes, nlvr2_dim, config, feature_rng)
                write_features(coco_nlvr2_features, name, array)

    # VQA2
    answers = answer_vocabulary(config.max_objects)
    entries = {split: vqa_entries(images[split], split, config, set(answers), rng) for split in images}
    minival_ids = {image_id for image_id, _ in images["val2014"][: config.minival_images]}
    imdb = {
        "train2014": entries["train2014"],
        "val2014": entries["val2014"],
        "trainval2014": entries["train2014"] + entries["val2014"],
        "minival2014": [entry for entry in entries["val2014"] if entry["image_id"] in minival_ids],
        "test2015": entries["test2015"],
    }
    for name, split_entries in imdb.items():
        save_imdb(os.path.join(coco_dir, "imdb", f"imdb_{name}.npy"), split_entries, has_answer=name != "test2015")
    write_lines(os.path.join(coco_dir, "extras", "vocabs", "answers_vqa.txt"), answers)
    questions_json, annotations_json = official_vqa_json(entries["val2014"])
    write_json(os.path.join(coco_dir, "Questions", "v2_OpenEnded_mscoco_val2014_questions.json"), questions_json)
    write_json(os.path.join(coco_dir, "Annotations", "v2_mscoco_val2014_annotations.json"), annotations_json)
    for split_entries in entries.values():
        for entry in split_entries:
            texts.append(" ".join(entry["question_tokens"]) + " ?")
            texts.extend(entry.get("answers", []))

    # COCO captions
    for split in ("train2014", "val2014"):
        content = coco_captions_json(images[split], split, config, rng)
        write_json(os.path.join(coco_dir, "annotations", f"captions_{split}.json"), content)
        texts.extend(annotation["caption"] for annotation in content["annotations"])

    # NLVR2
    nlvr2_labels = {}
    for split, num_sets in (
        ("train", config.nlvr2_train_sets),
        ("dev", config.nlvr2_eval_sets),
        ("test1", config.nlvr2_eval_sets),
    ):
        examples, pairs = nlvr2_sets(split, num_sets, config, rng)
        for pair_name, pair in tqdm(pairs, desc=f"features nlvr2 {split}", leave=False, disable=None):
            for image_name, objects in zip(nlvr2_image_names(f"{pair_name}-0"), pair):
                num_boxes = rng.randint(max(config.max_objects, config.nlvr2_boxes - 2), config.nlvr2_boxes)
                write_features(
                    nlvr2_features,
                    image_name,
                    region_features(objects, num_boxes, nlvr2_dim, config, feature_rng),
                )
        write_lines(os.path.join(nlvr2_dir, f"{split}.json"), [json.dumps(example) for example in examples])
        texts.extend(example["sentence"] for example in examples)
        nlvr2_labels[split] = Counter(example["label"] for example in examples)

    vocab = wordpiece_vocab(texts)
    write_lines(os.path.join(out_dir, "vocab.txt"), vocab)

    train_answers = Counter(Counter(e["answers"]).most_common(1)[0][0] for e in entries["train2014"])
    summary = {
        "config": asdict(config),
        "vqa_questions": {name: len(split_entries) for name, split_entries in imdb.items()},
        "vqa_majority_answer": train_answers.most_common(1)[0][0],
        "vqa_majority_baseline": train_answers.most_common(1)[0][1] / len(entries["train2014"]),
        "nlvr2_examples": {split: sum(labels.values()) for split, labels in nlvr2_labels.items()},
        "nlvr2_majority_baseline": max(nlvr2_labels["train"].values()) / sum(nlvr2_labels["train"].values()),
        "vocab_size": len(vocab),
    }
    write_json(os.path.join(out_dir, "sample_config.json"), summary)
    return summary


def main(argv=None) -> None:
    defaults = SampleConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write the sample into")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the numbers of images and NLVR2 sets")
    parser.add_argument(
        "--vqa_boxes", type=int, default=defaults.vqa_boxes, help="boxes per VQA/COCO image (real: 100)"
    )
    parser.add_argument(
        "--nlvr2_boxes", type=int, default=defaults.nlvr2_boxes, help="most boxes per NLVR2 image (real: 144)"
    )
    args = parser.parse_args(argv)
    config = replace(defaults, seed=args.seed, vqa_boxes=args.vqa_boxes, nlvr2_boxes=args.nlvr2_boxes)
    summary = write_sample(args.out, config.scaled(args.scale))
    print(json.dumps({key: value for key, value in summary.items() if key != "config"}, indent=1))


if __name__ == "__main__":
    main()
