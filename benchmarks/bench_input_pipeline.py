"""Throughput and memory of the VQA and NLVR2 input pipelines, from disk through ``paddle.io.DataLoader``.

Writes sample data with the real box counts (VQA 100 x 2048, NLVR2 up to 2 x 144 x 1024) at 1x and 4x the
images into a temporary folder, then, in a fresh process per run, times a fixed number of batches of each pipeline
in one run, and samples the memory (PSS, so pages shared by the DataLoader workers count once) of that process and
its workers, before the first batch and at its peak, in a second run (a sample takes tens of milliseconds of the
same CPU). Batches come as the trainer gets them: one ``BatchLoader`` for the run, shuffled every epoch, new workers
each epoch (at 1x an epoch is a handful of batches, so their start-up weighs more than in training).

    python benchmarks/bench_input_pipeline.py --num_workers 2 --out benchmarks/input_pipeline.json

The feature files were just written (and flushed), so they are read from the page cache: this measures the
pipeline's CPU cost, not the disk.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict

import numpy as np
import paddle
from paddlenlp.datasets import load_dataset

from paddlenlp_ext.data import BatchLoader, RegionFeatures, VisualBertCollator, load_tokenizer
from paddlenlp_ext.data.sample import SampleConfig, write_sample
from paddlenlp_ext.tasks.nlvr2.dataset import Nlvr2Dataset
from paddlenlp_ext.tasks.vqa.answers import load_answer_vocab
from paddlenlp_ext.tasks.vqa.dataset import VqaDataset

# Per scale 1: 100 train images (about 600 VQA questions) and 100 NLVR2 image pairs (200 statements).
BASE = SampleConfig(
    train_images=100,
    val_images=10,
    minival_images=5,
    test_images=5,
    vqa_boxes=100,
    nlvr2_boxes=144,
    nlvr2_train_sets=50,
    nlvr2_eval_sets=2,
)


def memory_mib(pid: int) -> float:
    """Proportional set size of ``pid`` and its child processes, in MiB."""
    total_kib = 0
    for process in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{process}/smaps_rollup") as f:
                total_kib += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass  # a worker that exited between listing and reading
    return total_kib / 1024


def _children(pid: int) -> list[int]:
    children = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            children += [int(child) for child in f.read().split()]
    return children


def build_dataset(task: str, data_dir: str):
    """The training dataset of ``task`` over the sample in ``data_dir`` and its collator."""
    tokenizer = load_tokenizer(os.path.join(data_dir, "vocab.txt"))
    if task == "vqa":
        coco = os.path.join(data_dir, "coco")
        answers = load_answer_vocab(os.path.join(coco, "extras", "vocabs", "answers_vqa.txt"))
        records = load_dataset("vqa2", splits="train", data_dir=coco)
        dataset = VqaDataset(records, RegionFeatures(coco, "coco_detectron_fix_100"), tokenizer, answers)
    else:
        nlvr2 = os.path.join(data_dir, "nlvr2")
        records = load_dataset("nlvr2", splits="train", data_dir=nlvr2)
        dataset = Nlvr2Dataset(records, RegionFeatures(nlvr2, "nlvr2_detectron_fix_144"), tokenizer)
    dataset.check_features()
    return dataset, VisualBertCollator(tokenizer.pad_token_id)


def time_batches(task: str, data_dir: str, num_workers: int, batch_size: int, num_batches: int, memory: bool) -> dict:
    """Samples/s over ``num_batches`` shuffled batches (epochs repeat as needed) after two warm-up batches, and with
    ``memory`` the memory before the loader starts and at its peak, sampled every 50 ms by a thread of this process.
    """
    dataset, collator = build_dataset(task, data_dir)
    loader = BatchLoader(dataset, collator, num_workers)  # as the trainer's
    order = np.random.default_rng(0)
    baseline = memory_mib(os.getpid())
    peak, done = [baseline], threading.Event()

    def sample_memory():
        while not done.wait(0.05):
            peak.append(memory_mib(os.getpid()))

    def endless_batches():
        epoch = 0
        while True:
            dataset.set_epoch(epoch)
            shuffled = order.permutation(len(dataset)).tolist()
            yield from loader.iterate([shuffled[i : i + batch_size] for i in range(0, len(shuffled), batch_size)])
            epoch += 1

    sampler = threading.Thread(target=sample_memory)
    if memory:
        sampler.start()
    batches = endless_batches()
    for _ in range(2):
        boxes = next(batches)["visual_embeds"].shape[1]
    start, samples = time.perf_counter(), 0
    for _ in range(num_batches):
        samples += next(batches)["input_ids"].shape[0]
    elapsed = time.perf_counter() - start
    done.set()
    if memory:
        sampler.join()
    batches.close()
    run = {"task": task, "examples": len(dataset), "boxes_per_example": int(boxes)}
    if not memory:
        return {**run, "samples_per_s": round(samples / elapsed, 1)}
    return {**run, "pss_before_loader_mib": round(baseline, 1), "peak_pss_mib": round(max(peak), 1)}


def run_in_fresh_process(task: str, data_dir: str, args) -> dict:
    """``time_batches`` in a new interpreter, so each run's memory starts from the same baseline: once timed, once
    with the memory sampled (reading a process's PSS walks its page tables, about 12 ms per process here: sampling
    would take a third of a core from the pipeline it measures)."""
    command = [sys.executable, __file__, "--child", task, "--data", data_dir, "--num_workers", str(args.num_workers)]
    command += ["--batch_size", str(args.batch_size), "--num_batches", str(args.num_batches)]
    run = {}
    for extra in ([], ["--memory"]):
        output = subprocess.run(command + extra, check=True, capture_output=True, text=True).stdout
        run.update(json.loads(output.strip().splitlines()[-1]))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_batches", type=int, default=120, help="batches timed per run")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 4], help="dataset sizes, in multiples of BASE")
    parser.add_argument("--out", default="input_pipeline.json", help="where to write the results")
    parser.add_argument("--child", choices=["vqa", "nlvr2"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run = time_batches(args.child, args.data, args.num_workers, args.batch_size, args.num_batches, args.memory)
        print(json.dumps(run))
        return

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for scale in args.scales:
            data_dir = os.path.join(tmp, f"scale{scale}")
            write_sample(data_dir, BASE.scaled(scale))
            os.sync()  # the kernel writes the new files back now, not during the timing
            for task in ("vqa", "nlvr2"):
                run = {"scale": scale, **run_in_fresh_process(task, data_dir, args)}
                print(json.dumps(run), flush=True)
                runs.append(run)
    result = {
        "args": vars(args),
        "base_sample": asdict(BASE),
        "versions": {"python": platform.python_version(), "paddle": paddle.__version__, "numpy": np.__version__},
        "cpus": os.cpu_count(),
        "runs": runs,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
