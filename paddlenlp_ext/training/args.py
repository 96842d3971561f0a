"""Command-line flags shared by every entry point (the original configuration blocks' names), and run setup."""

import argparse
import difflib
import inspect
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
from paddlenlp.utils.log import logger

from ..files import atomic_file
from ..paths import REPO_ROOT
from ..transformers.visualbert.configuration import VisualBertConfig

DEFAULT_MAX_SEQ_LENGTH = 128
# The shortest text every task fits: `[CLS] x ? [MASK] [SEP]` as wordpieces, with room for one more.
MIN_SEQ_LENGTH = 8


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
    p.add_argument(
        "--max_seq_length",
        type=int,
        default=DEFAULT_MAX_SEQ_LENGTH,
        help="wordpieces of text; the default is cut to a smaller model's max_position_embeddings",
    )
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
        p.add_argument(
            "--use_amp",
            action="store_true",
            help="O1 autocast on GPU: bfloat16 where supported, else float16 with loss scaling; fp32 on CPU",
        )
        p.add_argument(
            "--resume", nargs="?", const="auto", help="a checkpoint folder, or alone: the newest one in --output_dir"
        )
        p.add_argument("--overwrite_output_dir", action="store_true", help="replace a previous run in --output_dir")
    p.set_defaults(**defaults)
    return p


def check(args):
    """Raise ValueError naming the first flag out of its range (flags an entry point lacks are skipped)."""
    given = vars(args)

    def require(flag, ok, expected):
        if flag in given and given[flag] is not None and not ok(given[flag]):
            raise ValueError(f"--{flag} must be {expected}, got {given[flag]}")

    require("batch_size", lambda v: v >= 1, ">= 1")
    require("max_seq_length", lambda v: v >= MIN_SEQ_LENGTH, f">= {MIN_SEQ_LENGTH} (to hold [CLS] x ? [MASK] [SEP])")
    require("seed", lambda v: 0 <= v < 2**32, "in [0, 2**32)")  # numpy's seed range
    require("num_workers", lambda v: v >= 0, ">= 0")
    require("cpu_threads", lambda v: v >= 1, ">= 1")
    require("learning_rate", lambda v: v > 0, "> 0")
    require("warmup_proportion", lambda v: 0 <= v <= 1, "in [0, 1]")
    require("gradient_accumulation_steps", lambda v: v >= 1, ">= 1")
    require("logging_steps", lambda v: v >= 1, ">= 1")
    require("save_steps", lambda v: v >= 0, ">= 0 (0: only at the end)")
    require("num_train_epochs", lambda v: v >= 0, ">= 0")
    if given.get("num_train_epochs") == 0 and given.get("max_steps", 1) <= 0:
        raise ValueError("--num_train_epochs 0 without --max_steps trains nothing: give one of them > 0")


def setup(args):
    """Checked flags, device, threads, seeds, the distributed environment, a writable output_dir and its
    run_info.json."""
    check(args)
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
    if dist.get_rank() == 0 and not hasattr(args, "resume"):  # a training run writes it once it starts (fit)
        write_run_info(args)


def _check_writable(folder: str):
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise PermissionError(f"output_dir {folder} is not writable ({e.strerror})") from None


def write_run_info(args, resumed_at=None):
    """Arguments, package versions and the git commit, so every output folder says how it was made: run_info.json,
    or for a run resumed at step N run_info.resume-N.json beside the first start's."""
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
    name = "run_info.json" if resumed_at is None else f"run_info.resume-{resumed_at}.json"
    with atomic_file(os.path.join(args.output_dir, name)) as f:
        json.dump(info, f, indent=2, default=str)


def load_model(cls, args, config_defaults: dict, tokenizer, **overrides):
    """`--config` -> a random model of that config (fields it leaves out from `config_defaults`, e.g. the
    tokenizer's vocab size and the features' size); else cls.from_pretrained(--model_name_or_path). Checked to fit
    the tokenizer and --max_seq_length."""
    if getattr(args, "config", None):
        model = cls(read_config(args.config, {**config_defaults, **overrides}))
    else:
        model = cls.from_pretrained(args.model_name_or_path, **overrides)
    check_model(model.config, tokenizer, args)
    return model


# Fields a saved config.json may hold besides VisualBertConfig's own (PretrainedConfig's: architectures, dtype, ...).
_CONFIG_KEYS = set(VisualBertConfig().to_dict())


def read_config(path: str, defaults: dict) -> VisualBertConfig:
    """A VisualBertConfig from a JSON file of its fields over `defaults`; raise naming the file or the field."""
    try:
        with open(path, encoding="utf-8") as f:
            fields = json.load(f)
    except OSError as e:
        raise OSError(f"--config {path}: {e.strerror}") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"--config {path} is not JSON ({e})") from None
    if not isinstance(fields, dict):
        raise ValueError(f"--config {path}: expected a JSON object of VisualBertConfig fields")
    params = {
        name: param.annotation
        for name, param in inspect.signature(VisualBertConfig.__init__).parameters.items()
        if param.kind is param.POSITIONAL_OR_KEYWORD and name != "self"
    }
    for name, value in fields.items():
        if name not in params and name not in _CONFIG_KEYS:
            close = difflib.get_close_matches(name, params, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"--config {path}: unknown VisualBertConfig field {name!r}{hint}")
        expected = params.get(name)
        if expected is not None and not _has_type(value, expected):
            raise ValueError(f"--config {path}: {name} is {value!r}, expected {expected.__name__}")
    merged = {**defaults, **fields}
    hidden, heads = merged.get("hidden_size", 768), merged.get("num_attention_heads", 12)
    if heads < 1 or hidden % heads:
        raise ValueError(f"--config {path}: hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
    return VisualBertConfig(**merged)


def _has_type(value, expected: type) -> bool:
    """JSON's reading of a Python annotation: an int is a valid float, a bool is not a number."""
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def check_model(config, tokenizer, args):
    """Raise ValueError when the tokenizer's ids or --max_seq_length do not fit the model's embedding tables (the
    default --max_seq_length is cut to a smaller position table instead, with a warning)."""
    model_source = getattr(args, "config", None) or args.model_name_or_path
    tokenizer_source = args.tokenizer_name_or_path or f"the vocab of {args.model_name_or_path}"
    if len(tokenizer.vocab) > config.vocab_size:
        raise ValueError(
            f"the tokenizer ({tokenizer_source}) has {len(tokenizer.vocab)} tokens, more than the vocab_size "
            f"{config.vocab_size} of the model ({model_source})"
        )
    if args.max_seq_length > config.max_position_embeddings:
        if args.max_seq_length == DEFAULT_MAX_SEQ_LENGTH:  # a small model (a test config): fit it, not fail
            logger.warning(
                f"--max_seq_length {args.max_seq_length} cut to the max_position_embeddings "
                f"{config.max_position_embeddings} of the model ({model_source})"
            )
            args.max_seq_length = config.max_position_embeddings
            return
        raise ValueError(
            f"--max_seq_length {args.max_seq_length} is more than the max_position_embeddings "
            f"{config.max_position_embeddings} of the model ({model_source})"
        )


def run(main):
    """Run an entry point: a bad input ends with one line on stderr and exit code 2, not a traceback."""
    try:
        return main()
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
