"""Checkpoint conversion between HF transformers and this package, as pure functions over {name: numpy array}.

The Paddle parameter tree is HF's own (modeling.py), so a conversion is: drop HF's duplicates (the `position_ids`
buffer, the tied decoder weight, the decoder bias that repeats `cls.predictions.bias`), transpose every Linear
weight (torch stores [out, in], Paddle [in, out]) and check that every key is used and every shape fits.
Folders are written to a temporary sibling and renamed at the end, so a failure leaves the destination untouched.
"""

import json
import os
import re

import numpy as np
import paddle
from paddlenlp.transformers.model_utils import no_init_weights

from ...files import atomic_folder
from . import modeling
from .configuration import VisualBertConfig

__all__ = [
    "ConversionError",
    "LINEAR_WEIGHTS",
    "hf_to_paddle_state_dict",
    "paddle_to_hf_state_dict",
    "bert_to_visualbert_state_dict",
    "convert_hf_checkpoint",
    "convert_bert_checkpoint",
    "convert_paddle_to_hf",
    "paddle_state_shapes",
    "name_mappings",
    "read_hf_weights",
]

HEAD_CLASSES = (
    "VisualBertModel",
    "VisualBertForPreTraining",
    "VisualBertForQuestionAnswering",
    "VisualBertForVisualReasoning",
    "VisualBertForMultipleChoice",
    "VisualBertForRegionToPhraseAlignment",
)

# Every nn.Linear weight of every class, the only tensors whose layout differs between the frameworks.
# The encoder's names start with "visual_bert." in the head classes and with nothing in VisualBertModel.
LINEAR_WEIGHTS = [
    r"(visual_bert\.)?embeddings\.visual_projection\.weight",
    r"(visual_bert\.)?(encoder\.layer\.\d+|additional_layer)\.attention\.self\.(query|key|value)\.weight",
    r"(visual_bert\.)?(encoder\.layer\.\d+|additional_layer)\.(attention\.output|intermediate|output)\.dense\.weight",
    r"(visual_bert\.)?pooler\.dense\.weight",
    r"cls\.weight",  # task heads: QuestionAnswering, VisualReasoning, MultipleChoice
    r"cls\.predictions\.transform\.dense\.weight",
    r"cls\.predictions\.decoder\.weight",  # only RegionToPhraseAlignment keeps an untied decoder
    r"cls\.seq_relationship\.weight",
    r"attention\.(query|key|value)\.weight",  # RegionToPhraseAlignment's phrase-to-box attention
]
_LINEAR = re.compile("|".join(f"(?:{p})" for p in LINEAR_WEIGHTS))

# Config fields shared by HF's VisualBertConfig and ours.
CONFIG_FIELDS = (
    "vocab_size",
    "hidden_size",
    "visual_embedding_dim",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "bypass_transformer",
    "special_visual_initialize",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)
# The fields a BERT config gives a VisualBERT initialisation; the visual ones come from the caller or the defaults.
BERT_FIELDS = tuple(
    f for f in CONFIG_FIELDS if f not in ("visual_embedding_dim", "bypass_transformer", "special_visual_initialize")
)


class ConversionError(ValueError):
    """A checkpoint that cannot be converted exactly: the message names the file or the keys."""


def _reason(error: Exception) -> str:
    """The first line of a library's error, so that ours stays one line."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def is_linear_weight(name: str) -> bool:
    return _LINEAR.fullmatch(name) is not None


def paddle_state_shapes(architecture: str, config: VisualBertConfig) -> dict:
    """{parameter name: shape} of a Paddle model of that class, without allocating its weights."""
    with no_init_weights(), paddle.LazyGuard():
        model = getattr(modeling, architecture)(config)
    return {name: tuple(param.shape) for name, param in model.state_dict().items()}


def _tied_decoder(architecture: str) -> bool:
    return architecture == "VisualBertForPreTraining"


def _check_same(state, name, reference, source):
    if not np.array_equal(state[name], state[reference]):
        raise ConversionError(f"{source}: {name} differs from {reference}; this model ties them, so it cannot load it")


def _check_and_fill(converted: dict, expected: dict, source: str) -> dict:
    missing = sorted(set(expected) - set(converted))
    unexpected = sorted(set(converted) - set(expected))
    if missing or unexpected:
        raise ConversionError(f"{source}: missing keys {missing[:8]}, unexpected keys {unexpected[:8]}")
    wrong = [
        f"{k} {converted[k].shape} != {expected[k]}" for k in expected if tuple(converted[k].shape) != expected[k]
    ]
    if wrong:
        raise ConversionError(f"{source}: wrong shapes: {'; '.join(wrong[:4])}")
    return converted


def hf_to_paddle_state_dict(hf_state: dict, architecture: str, config: VisualBertConfig, source: str = "checkpoint"):
    """HF VisualBERT {name: array} -> Paddle {name: array} for `architecture`; strict."""
    state = {k: np.asarray(v) for k, v in hf_state.items()}
    used = {k for k in state if k.endswith("embeddings.position_ids")}  # a buffer Paddle recomputes
    if "cls.predictions.decoder.bias" in state:
        _check_same(state, "cls.predictions.decoder.bias", "cls.predictions.bias", source)
        used.add("cls.predictions.decoder.bias")
    if _tied_decoder(architecture) and "cls.predictions.decoder.weight" in state:
        _check_same(state, "cls.predictions.decoder.weight", "visual_bert.embeddings.word_embeddings.weight", source)
        used.add("cls.predictions.decoder.weight")
    transposed = {hf_name: transpose for hf_name, _, transpose in name_mappings(architecture, config)}
    converted = {k: (v.T if transposed.get(k) else v) for k, v in state.items() if k not in used}
    expected = paddle_state_shapes(architecture, config)
    return {k: np.ascontiguousarray(v) for k, v in _check_and_fill(converted, expected, source).items()}


def paddle_to_hf_state_dict(paddle_state: dict, architecture: str, config: VisualBertConfig, source="checkpoint"):
    """Paddle {name: array} -> HF {name: array}; HF re-ties the decoder on load, so tied copies are not written."""
    expected = paddle_state_shapes(architecture, config)
    state = _check_and_fill({k: np.asarray(v) for k, v in paddle_state.items()}, expected, source)
    return {k: np.ascontiguousarray(v.T if is_linear_weight(k) else v) for k, v in state.items()}


def bert_to_visualbert_state_dict(bert_state: dict, config: VisualBertConfig, seed: int = 0, source="checkpoint"):
    """A plain HF BERT (BertModel or BertForPreTraining) -> a VisualBertForPreTraining initialisation.

    The visual embeddings start as the original pretraining started them: with `special_visual_initialize` (the
    default) the visual type and position tables are copies of the (loaded) text ones, else drawn fresh; the box
    projection is drawn fresh. Heads missing from the source (a BertModel has none) are drawn fresh too. Returns
    (state, names of the freshly initialised parameters)."""
    renamed = {}
    for name, value in bert_state.items():
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        if name.startswith("bert."):
            name = "visual_bert." + name[len("bert.") :]
        elif not name.startswith("cls."):
            name = "visual_bert." + name
        renamed[name] = np.asarray(value)
    expected = paddle_state_shapes("VisualBertForPreTraining", config)
    rng = np.random.default_rng(seed)
    fresh = []
    copied = ("visual_token_type", "visual_position") if config.special_visual_initialize else ()
    for name, shape in expected.items():
        if name in renamed or any(table in name for table in copied):
            continue
        if name.endswith("LayerNorm.weight"):
            value = np.ones(shape, np.float32)
        elif name.endswith(".bias") or name == "cls.predictions.bias":
            value = np.zeros(shape, np.float32)
        else:  # torch layout, transposed below with the loaded weights
            value = rng.normal(0.0, config.initializer_range, shape[::-1] if is_linear_weight(name) else shape)
        renamed[name] = value.astype(np.float32)
        fresh.append(name)
    emb = "visual_bert.embeddings."
    if emb + "token_type_embeddings.weight" not in renamed:
        raise ConversionError(f"{source}: no {emb}token_type_embeddings.weight: is this a BERT checkpoint?")
    for table in copied:  # the original's recipe: start from the trained text tables
        renamed[f"{emb}{table}_embeddings.weight"] = renamed[
            f"{emb}{table[len('visual_') :]}_embeddings.weight"
        ].copy()
    return hf_to_paddle_state_dict(renamed, "VisualBertForPreTraining", config, source), fresh


# ---- folders -------------------------------------------------------------------------------------------------------


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConversionError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConversionError(f"{path}: not valid JSON ({e})") from None


def read_hf_checkpoint(folder: str):
    """(config dict, {name: float32 array}) of an HF folder with config.json and model.safetensors or
    pytorch_model.bin."""
    config = _read_json(os.path.join(folder, "config.json"))
    path = os.path.join(folder, "model.safetensors")
    if not os.path.exists(path):
        path = os.path.join(folder, "pytorch_model.bin")
        if not os.path.exists(path):
            raise ConversionError(f"{folder}: neither model.safetensors nor pytorch_model.bin found")
    return config, read_hf_weights(path)


def read_hf_weights(path: str) -> dict:
    """{name: array} of an HF weight file, model.safetensors or pytorch_model.bin."""
    try:
        if path.endswith(".safetensors"):
            from safetensors.numpy import load_file

            return load_file(path)
        import torch

        return {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    except Exception as e:  # torch and safetensors raise many types for a corrupt or truncated file
        raise ConversionError(f"{path}: cannot read the weights ({_reason(e)})") from None


def name_mappings(architecture: str, config: VisualBertConfig) -> list:
    """[(HF name, Paddle name, transposed)] for every parameter of `architecture`: the names are the same in both
    frameworks, and the linear weights (LINEAR_WEIGHTS) are transposed. HF's duplicates (the position_ids buffer,
    the tied decoder's copies) have no entry: hf_to_paddle_state_dict checks and drops them."""
    return [(name, name, is_linear_weight(name)) for name in paddle_state_shapes(architecture, config)]


def config_from_hf(hf_config: dict, source: str, **overrides) -> VisualBertConfig:
    fields = {k: hf_config[k] for k in CONFIG_FIELDS if k in hf_config}
    if "id2label" in hf_config:
        fields["num_labels"] = len(hf_config["id2label"])
    elif "num_labels" in hf_config:
        fields["num_labels"] = hf_config["num_labels"]
    fields.update(overrides)
    try:
        return VisualBertConfig(**fields)
    except (TypeError, ValueError) as e:
        raise ConversionError(f"{source}: invalid config ({e})") from None


def _architecture(hf_config: dict, source: str) -> str:
    architectures = hf_config.get("architectures") or []
    if len(architectures) != 1 or architectures[0] not in HEAD_CLASSES:
        raise ConversionError(f"{source}: architectures {architectures} is not one of {list(HEAD_CLASSES)}")
    return architectures[0]


def _write_paddle(dst: str, state: dict, config: VisualBertConfig, architecture: str):
    with atomic_folder(dst) as tmp:
        config.architectures = [architecture]
        config.save_pretrained(tmp)
        paddle.save({k: paddle.to_tensor(v) for k, v in state.items()}, os.path.join(tmp, "model_state.pdparams"))


def convert_hf_checkpoint(src: str, dst: str) -> str:
    """HF VisualBERT folder -> Paddle folder loadable by <architecture>.from_pretrained(dst); returns the class name.
    A plain BERT folder (model_type bert) must go through convert_bert_checkpoint instead."""
    hf_config, state = read_hf_checkpoint(src)
    source = os.path.join(src, "config.json")
    if hf_config.get("model_type") == "bert":
        raise ConversionError(
            f"{source}: a BERT checkpoint; convert it with --visual_embedding_dim (BERT initialisation)"
        )
    if hf_config.get("model_type") != "visual_bert":
        raise ConversionError(f"{source}: model_type {hf_config.get('model_type')!r} is not visual_bert")
    architecture = _architecture(hf_config, source)
    config = config_from_hf(hf_config, source)
    _write_paddle(dst, hf_to_paddle_state_dict(state, architecture, config, src), config, architecture)
    return architecture


def convert_bert_checkpoint(src: str, dst: str, visual_embedding_dim: int, seed: int = 0) -> list:
    """HF BERT folder -> Paddle VisualBertForPreTraining folder; returns the freshly initialised parameter names."""
    hf_config, state = read_hf_checkpoint(src)
    source = os.path.join(src, "config.json")
    if hf_config.get("model_type") != "bert":
        raise ConversionError(f"{source}: model_type {hf_config.get('model_type')!r} is not bert")
    fields = {k: hf_config[k] for k in BERT_FIELDS if k in hf_config}
    config = VisualBertConfig(visual_embedding_dim=visual_embedding_dim, **fields)
    new_state, fresh = bert_to_visualbert_state_dict(state, config, seed, src)
    _write_paddle(dst, new_state, config, "VisualBertForPreTraining")
    return fresh


def read_paddle_checkpoint(folder: str):
    """(VisualBertConfig, architecture, {name: array}) of a folder written by save_pretrained or this module."""
    source = os.path.join(folder, "config.json")
    _read_json(source)  # a clear error for a missing or broken file before PaddleNLP parses it
    config = VisualBertConfig.from_pretrained(folder)
    architecture = _architecture({"architectures": config.architectures}, source)
    weights = os.path.join(folder, "model_state.pdparams")
    if not os.path.exists(weights):
        raise ConversionError(f"{weights}: file not found")
    try:
        state = paddle.load(weights, return_numpy=True)
    except Exception as e:
        raise ConversionError(f"{weights}: cannot read the weights ({_reason(e)})") from None
    return config, architecture, state


def hf_config_dict(config: VisualBertConfig, architecture: str) -> dict:
    """The config.json HF transformers reads for this model."""
    hf = {k: getattr(config, k) for k in CONFIG_FIELDS}
    hf.update(model_type="visual_bert", architectures=[architecture])
    hf["id2label"] = {str(i): f"LABEL_{i}" for i in range(config.num_labels)}
    hf["label2id"] = {f"LABEL_{i}": i for i in range(config.num_labels)}
    return hf


def convert_paddle_to_hf(src: str, dst: str) -> str:
    """Paddle folder -> HF folder (config.json + model.safetensors) that transformers loads with no missing or
    unexpected keys; returns the class name."""
    from safetensors.numpy import save_file

    config, architecture, state = read_paddle_checkpoint(src)
    hf_state = paddle_to_hf_state_dict(state, architecture, config, src)

    with atomic_folder(dst) as tmp:
        with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
            json.dump(hf_config_dict(config, architecture), f, indent=2)
        save_file(hf_state, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
    return architecture
