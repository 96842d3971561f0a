"""Export a saved VisualBERT head to a Paddle Inference model (and optionally ONNX) with named, dynamic inputs.

The exported folder holds model.json + model.pdiparams (the program `paddle.jit.save` writes under Paddle 3's PIR),
config.json, the model's tokenizer files, export.json (task, inputs, outputs) and, with `onnx`, model.onnx.
"""

import json
import os
import shutil

import paddle
from paddle.static import InputSpec

from ..files import atomic_folder
from ..tasks.vqa.answers import FILE_NAME as ANSWERS_FILE
from ..transformers import (
    VisualBertForPreTraining,
    VisualBertForQuestionAnswering,
    VisualBertForVisualReasoning,
)

__all__ = ["TASKS", "INPUTS", "EXPORT_FILE", "export"]

# task -> (head class, the names of the outputs the export returns, in order)
TASKS = {
    "vqa": (VisualBertForQuestionAnswering, ("logits",)),
    "nlvr2": (VisualBertForVisualReasoning, ("logits",)),
    "pretrain": (VisualBertForPreTraining, ("prediction_logits", "seq_relationship_logits")),
}
# The inputs of every export, in order: the batch keys of paddlenlp_ext.data.MODEL_INPUTS.
INPUTS = (
    "input_ids",
    "token_type_ids",
    "attention_mask",
    "visual_embeds",
    "visual_token_type_ids",
    "visual_attention_mask",
)
EXPORT_FILE = "export.json"
# What a model folder carries besides the model, copied into the export when present: the tokenizer and (VQA) the
# answer vocabulary, so that an exported folder answers questions on its own.
MODEL_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", ANSWERS_FILE)
ONNX_OPSET = 17  # the first with LayerNormalization as one operator


class _NamedInputs(paddle.nn.Layer):
    """A head called with the six inputs by position (the names come from the InputSpecs), returning its outputs."""

    def __init__(self, model, outputs):
        super().__init__()
        self.model = model
        self.outputs = outputs

    def forward(self, input_ids, token_type_ids, attention_mask, visual_embeds, visual_token_type_ids,
                visual_attention_mask):  # fmt: skip
        out = self.model(
            input_ids=input_ids,
            token_type_ids=token_type_ids,
            attention_mask=attention_mask,
            visual_embeds=visual_embeds,
            visual_token_type_ids=visual_token_type_ids,
            visual_attention_mask=visual_attention_mask,
            return_dict=True,
        )
        return tuple(out[name] for name in self.outputs)


def input_specs(visual_embedding_dim: int) -> list[dict]:
    """name, dtype and shape (-1: any size) of each input."""
    return [
        {"name": name, "dtype": "float32", "shape": [-1, -1, visual_embedding_dim]}
        if name == "visual_embeds"
        else {"name": name, "dtype": "int64", "shape": [-1, -1]}
        for name in INPUTS
    ]


def output_specs(task: str, config) -> list[dict]:
    """name and shape of each output, in the order the program returns them."""
    shapes = {
        "logits": [-1, config.num_labels],
        "prediction_logits": [-1, -1, config.vocab_size],  # text + boxes positions
        "seq_relationship_logits": [-1, 2],
    }
    return [{"name": name, "dtype": "float32", "shape": shapes[name]} for name in TASKS[task][1]]


def export(model_dir: str, task: str, dst: str, onnx: bool = False) -> str:
    """Export `<task's class>.from_pretrained(model_dir)` into `dst` (replaced only when everything is written);
    returns dst. task: vqa, nlvr2 or pretrain."""
    cls, outputs = _check(model_dir, task, dst)
    model = cls.from_pretrained(model_dir)
    model.eval()
    inputs, output_info = input_specs(model.config.visual_embedding_dim), output_specs(task, model.config)
    specs = [InputSpec(spec["shape"], spec["dtype"], spec["name"]) for spec in inputs]
    program = paddle.jit.to_static(_NamedInputs(model, outputs), input_spec=specs, full_graph=True)
    with atomic_folder(dst) as tmp:
        paddle.jit.save(program, os.path.join(tmp, "model"))
        model.config.save_pretrained(tmp)
        for name in MODEL_FILES:
            if os.path.isfile(os.path.join(model_dir, name)):
                shutil.copy(os.path.join(model_dir, name), tmp)
        if onnx:
            _write_onnx(tmp, outputs)
        info = {
            "task": task,
            "architecture": cls.__name__,
            "inputs": inputs,
            "outputs": output_info,
            "paddle_model": ["model.json", "model.pdiparams"],
            "onnx_model": "model.onnx" if onnx else None,
            "paddlepaddle": paddle.__version__,
        }
        with open(os.path.join(tmp, EXPORT_FILE), "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    return dst


def _check(model_dir: str, task: str, dst: str):
    """(class, output names) of the task, after checking the folders; bad input raises naming it."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}: use one of {', '.join(TASKS)}")
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise FileNotFoundError(f"{model_dir}: not a saved model folder (no config.json)")
    try:
        with open(config_path, encoding="utf-8") as f:
            architectures = json.load(f).get("architectures") or []
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path} is not valid JSON ({e})") from None
    cls, outputs = TASKS[task]
    if architectures != [cls.__name__]:
        raise ValueError(f"{model_dir} holds {architectures or 'no architectures'}; task {task} needs {cls.__name__}")
    model_dir, dst = os.path.abspath(model_dir), os.path.abspath(dst)
    if os.path.commonpath([model_dir, dst]) == dst:
        raise ValueError(f"dst {dst} would replace the model folder {model_dir}: choose another")
    if os.path.exists(dst) and os.listdir(dst) and not os.path.isfile(os.path.join(dst, EXPORT_FILE)):
        raise ValueError(f"dst {dst} exists and is not an export: choose a new or empty folder")
    return cls, outputs


def _write_onnx(folder: str, output_names: list[str]):
    """model.onnx from the saved program, its outputs named as the export's."""
    import onnx
    import paddle2onnx

    try:
        # save_file=None returns the bytes and skips paddle2onnx's polygraphy pass, which may pip-install packages
        model = paddle2onnx.export(
            os.path.join(folder, "model.json"),
            os.path.join(folder, "model.pdiparams"),
            save_file=None,
            opset_version=ONNX_OPSET,
            auto_upgrade_opset=False,
        )
    except UnboundLocalError:  # paddle2onnx logs the conversion error, then fails to return the missing model
        raise RuntimeError("paddle2onnx could not convert the program (its error is logged above)") from None
    model = onnx.load_from_string(model)
    # paddle2onnx names the outputs fetch_name_<i> (the program's fetch names), in the program's output order
    renames = {output.name: name for output, name in zip(model.graph.output, output_names, strict=True)}
    for node in model.graph.node:
        node.output[:] = [renames.get(name, name) for name in node.output]
        node.input[:] = [renames.get(name, name) for name in node.input]
    for output in model.graph.output:
        output.name = renames[output.name]
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(folder, "model.onnx"))
