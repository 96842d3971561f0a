"""Checkpoints that survive crashes: each is a folder written under a temporary name and renamed when complete
(``files.atomic_folder``).

A checkpoint folder is a normal model folder (save_pretrained: config.json + model_state.pdparams, plus the
tokenizer) with `training_state.pdparams` beside it: optimizer (AdamW moments and the LR schedule), step, data
position and RNG states, so a run resumes exactly where it stopped.
"""

import json
import os
import random
import re
import shutil

import numpy as np
import paddle

from ..files import atomic_folder

TRAINING_STATE = "training_state.pdparams"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def _remove_unfinished(path: str):
    """Delete what an earlier write of `path`, killed midway, left behind: atomic_folder's hidden `.<name>.tmp-*`
    and `.<name>.old-*` siblings. Nothing else removes them, and each can be as large as a checkpoint."""
    parent, name = os.path.split(path)
    unfinished = re.compile(rf"\.{re.escape(name)}\.(tmp|old)-\w+")
    for entry in os.listdir(parent):
        if unfinished.fullmatch(entry):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _save_model(folder: str, model, tokenizer, save_with=None):
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    if save_with is not None:
        save_with(folder)


def rng_states() -> dict:
    return {"paddle": paddle.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict):
    paddle.set_rng_state(states["paddle"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def _rename_optimizer_state(state: dict, names: dict) -> dict:
    """Rename the per-parameter entries ("<param>_moment1_0", ...) of an optimizer state by `names`."""
    renamed = {}
    for key, value in state.items():
        prefix = max((p for p in names if key.startswith(p + "_")), key=len, default=None)
        renamed[names[prefix] + key[len(prefix) :] if prefix else key] = value
    return renamed


def optimizer_state(optimizer, model) -> dict:
    """The optimizer's state keyed by the parameters' structured names: Paddle's own keys use generated names
    (embedding_10.w_0) that depend on how many layers the process created before, so they do not survive a restart."""
    return _rename_optimizer_state(optimizer.state_dict(), {p.name: n for n, p in model.named_parameters()})


def set_optimizer_state(optimizer, model, state: dict):
    optimizer.set_state_dict(_rename_optimizer_state(state, {n: p.name for n, p in model.named_parameters()}))


def save_checkpoint(output_dir: str, step: int, model, tokenizer, optimizer, state: dict, keep: int, save_with=None):
    """Write checkpoint-<step> (model, tokenizer, what save_with(folder) adds, optimizer, `state`, RNG) and delete all
    but the newest `keep`."""
    path = os.path.join(output_dir, f"checkpoint-{step}")
    _remove_unfinished(path)
    with atomic_folder(path) as tmp:
        _save_model(tmp, model, tokenizer, save_with)
        paddle.save(
            {"optimizer": optimizer_state(optimizer, model), "state": state, "rng": rng_states()},
            os.path.join(tmp, TRAINING_STATE),
        )
    for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return path


def save_best(output_dir: str, model, tokenizer, metrics: dict, save_with=None):
    """The best model so far by the dev metric, in `best/` (with its metrics.json)."""
    path = os.path.join(output_dir, "best")
    _remove_unfinished(path)
    with atomic_folder(path) as tmp:
        _save_model(tmp, model, tokenizer, save_with)
        # a plain write: the whole folder is published at once
        with open(os.path.join(tmp, "metrics.json"), "w", encoding="utf-8") as f:
            json.dump(metrics, f, indent=2)


def list_checkpoints(output_dir: str) -> list:
    """Complete checkpoint folders, oldest first (one being written has a hidden temporary name, which this skips)."""
    if not os.path.isdir(output_dir):
        return []
    found = []
    for name in os.listdir(output_dir):
        match = _CHECKPOINT.fullmatch(name)
        if match and os.path.exists(os.path.join(output_dir, name, TRAINING_STATE)):
            found.append((int(match.group(1)), os.path.join(output_dir, name)))
    return [path for _, path in sorted(found)]


def load_training_state(path: str) -> dict:
    state_file = os.path.join(path, TRAINING_STATE)
    if not os.path.exists(state_file):
        raise FileNotFoundError(f"{path}: not a training checkpoint (no {TRAINING_STATE})")
    return paddle.load(state_file)
