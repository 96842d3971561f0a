"""VQA prediction throughput at BERT-base: questions/s through the same code as VQA2/run_predict.py (DataLoader with
workers reading 100 x 2048 region features from disk, collator, model, top-1 answer), against the model alone on the
same batches already in memory. Their ratio says whether prediction is bound by the model or by the input side.

python benchmarks/bench_vqa_predict.py                        # batch 64, 2 workers, every core, ~300 questions
python benchmarks/bench_vqa_predict.py --batch_size 128 --val_images 200 --out vqa_predict.json

The model is a randomly initialised BERT-base VisualBertForQuestionAnswering (speed does not depend on the weights),
the data the generated sample with the real box count and feature size.
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

from paddlenlp_ext.data import RegionFeatures, load_tokenizer, loading, model_inputs
from paddlenlp_ext.data.sample import SampleConfig, write_sample
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

        # the model alone, on the batches already collated in memory
        collate = loading.collator(tokenizer)
        batches = list(DataLoader(data, batch_size=args.batch_size, collate_fn=collate, return_list=True))
        with paddle.no_grad():
            model(**model_inputs(batches[0]))  # warm-up: allocator and library caches
            start = time.perf_counter()
            for batch in batches:
                model(**model_inputs(batch))[0].numpy()
            model_seconds = time.perf_counter() - start

        # the whole prediction path, as VQA2/run_predict.py runs it
        start = time.perf_counter()
        question_ids, _, _ = vqa.predict(model, data, tokenizer, args.batch_size, args.num_workers)
        predict_seconds = time.perf_counter() - start

    questions = len(question_ids)
    report = {
        "questions": questions,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "threads": threads,
        "predict_questions_per_s": questions / predict_seconds,
        "model_only_questions_per_s": questions / model_seconds,
        "predict_over_model_time": predict_seconds / model_seconds,
    }
    print(f"VQA prediction, BERT-base, 100 boxes x 2048, batch {args.batch_size}, {args.num_workers} workers, "
          f"{threads} thread(s), {questions} questions")  # fmt: skip
    print(f"  run_predict path: {report['predict_questions_per_s']:.2f} questions/s")
    print(f"  model alone:      {report['model_only_questions_per_s']:.2f} questions/s")
    print(f"  time ratio (predict / model alone): {report['predict_over_model_time']:.3f}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
