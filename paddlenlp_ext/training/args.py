"""Command-line flags shared by every entry point (the original configuration blocks' names), and run setup."""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
import paddle
import paddle.distributed as dist

from ..files import atomic_file
from ..paths import REPO_ROOT
from ..transformers.visualbert.configuration import VisualBertConfig


def base_parser(description: str, training: bool = True, **defaults) -> argparse.ArgumentParser:
    """The flags every entry point takes (training ones only when `training`); `defaults` sets an entry point's
    own defaults (e.g. the paper's learning rate)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input_dir", help="data root: the task's files in their released layout (see README)")
    p.add_argument("--feature_dir", help="folder holding data/detectron_fix_*; default: --input_dir")
    p.add_argument("--output_dir", required=True, help="outputs, logs and run_info.json go here")
    p.add_argument("--task_name", help="a name for the run, recorded in run_info.json")
    p.add_argument("--model_type", default="visualbert", choices=["visualbert"])
    p.add_argument(
        "--model_name_or_path",
        help="one of the nine checkpoint names, a saved or converted folder, or a BERT initialisation folder",
    )
    p.add_argument(
        "--tokenizer_name_or_path", help="vocab.txt, a folder with one, or a PaddleNLP name; default: the model's"
    )
    p.add_argument("--batch_size", type=int, default=64, help="per process")
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="gpu" if paddle.is_compiled_with_cuda() else "cpu", choices=["cpu", "gpu"])
    p.add_argument("--num_workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--cpu_threads", type=int, help="math threads per process on CPU (default: OMP_NUM_THREADS or all)")
    if training:
        p.add_argument("--config", help="JSON of VisualBertConfig fields: start from a randomly initialised model")
        p.add_argument("--learning_rate", type=float, default=2e-5)
        p.add_argument("--num_train_epochs", type=int, default=10)
        p.add_argument("--max_steps", type=int, default=-1, help="optimizer steps; > 0 overrides num_train_epochs")
        p.add_argument("--warmup_proportion", type=float, default=0.1)
        p.add_argument("--weight_decay", type=float, default=0.01)
        p.add_argument("--adam_epsilon", type=float, default=1e-6)
        p.add_argument("--max_grad_norm", type=float, default=1.0)
        p.add_argument("--logging_steps", type=int, default=100)
        p.add_argument(
            "--save_steps", type=int, default=5000, help="evaluate and checkpoint every N steps and at the end"
        )
        p.add_argument("--save_total_limit", type=int, default=2, help="checkpoints kept besides best/")
        p.add_argument("--gradient_accumulation_steps", type=int, default=1)
        p.add_argument("--use_amp", action="store_true", help="fp16/bf16 autocast on GPU (fp32 elsewhere)")
        p.add_argument(
            "--resume", nargs="?", const="auto", help="a checkpoint folder, or alone: the newest one in --output_dir"
        )
    p.set_defaults(**defaults)
    return p


def setup(args):
    """Device, threads, seeds, the distributed environment, a writable output_dir and its run_info.json."""
    if args.model_name_or_path is None and getattr(args, "config", None) is None:
        raise ValueError("give --model_name_or_path" + (" or --config" if hasattr(args, "config") else ""))
    paddle.set_device(args.device)
    if args.device == "cpu":
        from ..runtime import configure_cpu

        configure_cpu(args.cpu_threads)
    if dist.get_world_size() > 1:
        dist.init_parallel_env()
    paddle.seed(args.seed)  # the same initial weights on every rank
    np.random.seed(args.seed)
    _check_writable(args.output_dir)
    if dist.get_rank() == 0:
        write_run_info(args)


def _check_writable(folder: str):
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise PermissionError(f"output_dir {folder} is not writable ({e.strerror})") from None


def write_run_info(args):
    """Arguments, package versions and the git commit, so every output folder says how it was made."""
    import paddlenlp

    try:
        commit = subprocess.run(
            ["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except OSError:
        commit = ""
    info = {
        "args": vars(args),
        "argv": sys.argv,
        "git_commit": commit or None,
        "versions": {
            "python": platform.python_version(),
            "paddlepaddle": paddle.__version__,
            "paddlenlp": paddlenlp.__version__,
            "numpy": np.__version__,
        },
        "world_size": dist.get_world_size(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    with atomic_file(os.path.join(args.output_dir, "run_info.json")) as f:
        json.dump(info, f, indent=2, default=str)


def load_model(cls, args, config_defaults: dict, **overrides):
    """`--config` -> a random model of that config (fields it leaves out from `config_defaults`, e.g. the
    tokenizer's vocab size and the features' size); else cls.from_pretrained(--model_name_or_path)."""
    if getattr(args, "config", None):
        with open(args.config, encoding="utf-8") as f:
            fields = json.load(f)
        return cls(VisualBertConfig(**{**config_defaults, **fields, **overrides}))
    return cls.from_pretrained(args.model_name_or_path, **overrides)


def run(main):
    """Run an entry point: a bad input ends with one line on stderr and exit code 2, not a traceback."""
    try:
        return main()
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
