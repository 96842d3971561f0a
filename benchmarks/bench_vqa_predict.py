"""VQA prediction throughput at BERT-base, eager against Paddle Inference: questions/s of each on the same batches
already in memory, side by side (every batch through both, which one leads alternating), and through the same code as
VQA2/run_predict.py (DataLoader with workers reading 100 x 2048 region features from disk, collator, model, top-1
answer). The ratio of the two paths says whether prediction is bound by the model or by the input side.

python benchmarks/bench_vqa_predict.py                        # batch 64, 2 workers, every core, ~300 questions
python benchmarks/bench_vqa_predict.py --batch_size 128 --val_images 200 --out vqa_predict.json

The model is a randomly initialised BERT-base VisualBertForQuestionAnswering (speed does not depend on the weights),
exported with paddlenlp_ext.deploy.export; the data the generated sample with the real box count and feature size.
"""

import argparse
import json
import os
import sys
import tempfile
import time

import paddle
from paddle.io import DataLoader
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import MODEL_INPUTS, RegionFeatures, load_tokenizer, loading
from paddlenlp_ext.data.sample import SampleConfig, write_sample
from paddlenlp_ext.deploy import InferenceModel, export
from paddlenlp_ext.runtime import configure_cpu
from paddlenlp_ext.tasks.vqa import task as vqa
from paddlenlp_ext.tasks.vqa.answers import load_answer_vocab
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset
from paddlenlp_ext.transformers import VisualBertConfig, VisualBertForQuestionAnswering


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--threads", type=int, help="math threads (default: OMP_NUM_THREADS, else every core)")
    parser.add_argument("--val_images", type=int, default=75, help="sample val images, about 4 questions each")
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    paddle.set_device("cpu")
    threads = configure_cpu(args.threads)

    with tempfile.TemporaryDirectory() as folder:
        config = SampleConfig(train_images=2, val_images=args.val_images, minival_images=1, test_images=1,
                              vqa_boxes=100, nlvr2_train_sets=1, nlvr2_eval_sets=1)  # fmt: skip
        write_sample(folder, config)
        coco = os.path.join(folder, "coco")
        tokenizer = load_tokenizer(os.path.join(folder, "vocab.txt"))
        answers = load_answer_vocab(os.path.join(coco, "extras", "vocabs", "answers_vqa.txt"))
        data = VqaDataset(
            load_dataset("vqa2", splits=["val"], data_dir=coco),
            RegionFeatures(coco, vqa.FEATURE_TYPE, dim=2048),
            tokenizer,
            answers=answers,
        )
        paddle.seed(0)
        model = VisualBertForQuestionAnswering(
            VisualBertConfig(vocab_size=len(tokenizer.vocab), visual_embedding_dim=2048, num_labels=len(answers))
        )
        model.eval()
        model.save_pretrained(os.path.join(folder, "model"))
        exported = InferenceModel.from_dir(
            export(os.path.join(folder, "model"), "vqa", os.path.join(folder, "export"))
        )
        models = {"eager": model, "inference": exported}

        # each model alone, on the batches already collated in memory, given the same inputs (no labels)
        collate = loading.collator(tokenizer)
        loader = DataLoader(data, batch_size=args.batch_size, collate_fn=collate, return_list=True)
        batches = [{name: batch[name] for name in MODEL_INPUTS} for batch in loader]
        logits = {
            "eager": lambda inputs: model(**inputs, return_dict=True).logits.numpy(),
            "inference": lambda inputs: exported(**inputs)["logits"],
        }
        model_seconds = dict.fromkeys(models, 0.0)
        with paddle.no_grad():
            for run in logits.values():
                run(batches[0])  # warm-up: allocator and library caches
            for i, batch in enumerate(batches):
                for name in list(models) if i % 2 == 0 else reversed(models):
                    start = time.perf_counter()
                    logits[name](batch)
                    model_seconds[name] += time.perf_counter() - start

        # the whole prediction path, as VQA2/run_predict.py runs it (with --inference_model for the export)
        predict_seconds, top1 = {}, {}
        for name, predictor in models.items():
            start = time.perf_counter()
            question_ids, indices, _ = vqa.predict(predictor, data, tokenizer, args.batch_size, args.num_workers)
            predict_seconds[name] = time.perf_counter() - start
            top1[name] = indices[:, 0]

    questions = len(question_ids)
    report = {
        "questions": questions,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "threads": threads,
    }
    for name in models:
        report[name] = {
            "predict_questions_per_s": questions / predict_seconds[name],
            "model_only_questions_per_s": questions / model_seconds[name],
            "predict_over_model_time": predict_seconds[name] / model_seconds[name],
        }
    report["inference_over_eager_model_only_speed"] = model_seconds["eager"] / model_seconds["inference"]
    report["same_top1_answers"] = float((top1["eager"] == top1["inference"]).mean())
    print(f"VQA prediction, BERT-base, 100 boxes x 2048, batch {args.batch_size}, {args.num_workers} workers, "
          f"{threads} thread(s), {questions} questions")  # fmt: skip
    print(f"{'questions/s':<28}{'eager':>10}{'Paddle Inference':>18}")
    for key, label in (("predict_questions_per_s", "run_predict path"), ("model_only_questions_per_s", "model alone")):
        print(f"  {label:<26}{report['eager'][key]:>10.2f}{report['inference'][key]:>18.2f}")
    print(
        f"  Paddle Inference / eager, model alone: {report['inference_over_eager_model_only_speed']:.2f}x; "
        f"same top-1 answer on {report['same_top1_answers']:.1%} of the questions"
    )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
