import json

from paddlenlp.datasets import load_dataset


def test_coco_captions_reads_every_caption(sample_dir):
    datasets = load_dataset("coco_captions", splits=["train", "val"], data_dir=str(sample_dir / "coco"))
    for split in ("train", "val"):
        content = json.loads((sample_dir / "coco" / "annotations" / f"captions_{split}2014.json").read_text())
        records = datasets[split]
        assert [r["caption"] for r in records] == [a["caption"] for a in content["annotations"]]
        first = records[0]
        assert first["image_name"] == f"COCO_{split}2014_{first['image_id']:012d}"
