"""Where `VisualBert*.from_pretrained` finds a model, and how PaddleNLP's torch-checkpoint path converts one.

The sources, in order: a local folder (saved, converted or exported by this project, or written by transformers with
`convert_from_torch=True`); one of the nine checkpoint names, from checkpoint/paddle_visualbert/<name> (or from the
HuggingFace hub as uclanlp/<name> with `from_hf_hub=True`); and any name PaddleNLP's own from_pretrained resolves
online (`from_hf_hub=True`, `from_aistudio=True`, or its community store by default).
"""

import contextlib
import os

from paddlenlp.utils.env import MODEL_HOME

from ...paths import CHECKPOINT_HOME
from . import convert
from .configuration import PRETRAINED_CHECKPOINTS

HUB_ORGANISATION = "uclanlp"  # the nine checkpoints' home on the HuggingFace hub


def _remote(kwargs) -> str | None:
    if kwargs.get("from_hf_hub"):
        return "the HuggingFace hub"
    if kwargs.get("from_aistudio"):
        return "AI Studio"
    return None


def _looks_like_a_path(name: str) -> bool:
    """A name that can only mean a folder: absolute, relative to ., .. or ~, or ending in a separator. Remote names
    (`org/model`) are none of these."""
    return os.path.isabs(name) or name.startswith(("./", "../", "~", ".\\", "..\\")) or name.endswith(os.sep)


def resolve(name: str, kwargs: dict) -> str:
    """What to hand PaddleNLP's from_pretrained for `name`; a missing folder or converted checkpoint is an error
    here, naming it and where it was looked for, before anything goes to the network."""
    if os.path.isdir(name):
        return name
    remote = _remote(kwargs)
    if name in PRETRAINED_CHECKPOINTS:
        if kwargs.get("from_hf_hub"):
            kwargs.setdefault("convert_from_torch", True)
            return f"{HUB_ORGANISATION}/{name}"
        local = os.path.normpath(os.path.join(CHECKPOINT_HOME, name))
        if not os.path.isdir(local) and not remote:
            raise FileNotFoundError(
                f"{name}: no converted checkpoint at {local}; run checkpoint/convert.py on "
                f"{HUB_ORGANISATION}/{name} downloaded into checkpoint/uclanlp/, or load it with from_hf_hub=True"
            )
        return local if os.path.isdir(local) else name
    if _looks_like_a_path(name) or os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such folder")
    return name


def _files_under(folder: str) -> set:
    return {os.path.join(root, f) for root, _, files in os.walk(folder) for f in files}


@contextlib.contextmanager
def clear_failures(name: str, kwargs: dict):
    """Turn a failed remote load into one error naming `name` and where it was looked for, and remove the empty
    files and folders a failed download leaves in PaddleNLP's cache."""
    cache = os.path.join(kwargs.get("cache_dir") or MODEL_HOME, name)
    existed, before = os.path.isdir(cache), _files_under(cache)
    try:
        yield
    except (OSError, ValueError, RuntimeError) as error:
        for path in _files_under(cache) - before:
            if os.path.getsize(path) == 0:
                os.remove(path)
        if not existed and os.path.isdir(cache) and not _files_under(cache):
            for root, _, _ in sorted(os.walk(cache), key=lambda entry: -len(entry[0])):
                os.rmdir(root)
        where = _remote(kwargs) or "PaddleNLP's community store"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileNotFoundError(
            f"{name}: not a local folder and not one of the VisualBERT checkpoints {sorted(PRETRAINED_CHECKPOINTS)}; "
            f"not found in {where} either ({reason[:200]})"
        ) from None


def torch_checkpoint_to_paddle(weight_file: str, config) -> dict:
    """An HF VisualBERT weight file (pytorch_model.bin or model.safetensors) -> the Paddle state dict, by
    convert.py's strict conversion for the checkpoint's own class (config.architectures)."""
    architectures = [a for a in (config.architectures or []) if a in convert.HEAD_CLASSES]
    if len(architectures) != 1:
        raise convert.ConversionError(f"{weight_file}: its config names no VisualBERT class ({config.architectures})")
    state = convert.read_hf_weights(weight_file)
    return convert.hf_to_paddle_state_dict(state, architectures[0], config, source=weight_file)
