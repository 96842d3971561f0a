"""Run an exported folder (see export.py): `InferenceModel` through Paddle Inference, `OnnxModel` through ONNX
Runtime; both take the six named inputs as arrays and return {output name: numpy array}.

Device: Paddle Inference runs on the GPU when Paddle is built with CUDA and the current device
(`paddle.set_device`, or `device=`) is a GPU, else on the CPU with `paddlenlp_ext.runtime.math_threads()` threads
(what `configure_cpu` set; the entry points call it). On the CPU it keeps its default oneDNN kernels: about 6x the
eager model's speed at BERT-base on this project's AMD EPYC (benchmarks/bench_vqa_predict.py), with logits within
~3e-6 of it.
"""

import json
import os

import numpy as np
import paddle

from ..runtime import math_threads
from ..transformers import VisualBertConfig
from .export import EXPORT_FILE, TASKS

__all__ = ["InferenceModel", "OnnxModel", "read_export"]

GPU_MEMORY_POOL_MB = 256  # Paddle Inference's initial GPU pool; it grows as needed


def read_export(path: str) -> tuple[dict, VisualBertConfig]:
    """(export.json, the VisualBertConfig) of an exported folder; a folder without an export raises naming it."""
    info_path = os.path.join(path, EXPORT_FILE)
    if not os.path.isfile(info_path):
        raise FileNotFoundError(
            f"{path}: not an exported model (no {EXPORT_FILE}; make one with checkpoint/export.py)"
        )
    with open(info_path, encoding="utf-8") as f:
        info = json.load(f)
    return info, VisualBertConfig.from_pretrained(path)


class _Exported:
    """What both runtimes share: the export's task, config and named inputs and outputs."""

    def __init__(self, path: str, info: dict, config: VisualBertConfig):
        self.path = path
        self.task = info["task"]
        self.config = config
        self.input_specs = info["inputs"]
        self.output_names = [spec["name"] for spec in info["outputs"]]

    def _arrays(self, inputs: dict) -> dict:
        """The inputs as contiguous arrays of the export's dtypes (tensors and lists are accepted too)."""
        names = [spec["name"] for spec in self.input_specs]
        if set(inputs) != set(names):
            missing, extra = sorted(set(names) - set(inputs)), sorted(set(inputs) - set(names))
            raise ValueError(f"{self.path} takes {names}; missing {missing}, unexpected {extra}")
        return {spec["name"]: np.ascontiguousarray(inputs[spec["name"]], spec["dtype"]) for spec in self.input_specs}


class InferenceModel(_Exported):
    """An exported folder run by a `paddle.inference` predictor: `model(**inputs)` -> {"logits": array, ...}."""

    def __init__(self, path: str, info: dict, config: VisualBertConfig, device: str | None = None):
        super().__init__(path, info, config)
        model_file, params_file = (os.path.join(path, name) for name in info["paddle_model"])
        predictor_config = paddle.inference.Config(model_file, params_file)
        device = device or paddle.get_device()
        if paddle.is_compiled_with_cuda() and device.startswith("gpu"):
            device_id = int(device.split(":")[1]) if ":" in device else 0
            predictor_config.enable_use_gpu(GPU_MEMORY_POOL_MB, device_id)
        else:
            predictor_config.disable_gpu()
            predictor_config.set_cpu_math_library_num_threads(math_threads())
        predictor_config.disable_glog_info()
        self._predictor = paddle.inference.create_predictor(predictor_config)
        # The program's fetch names are fetch_name_<i>, in the export's output order.
        self._outputs = self._predictor.get_output_names()

    @classmethod
    def from_dir(cls, path: str, device: str | None = None) -> "InferenceModel":
        """The predictor of an exported folder, on `device` (default: Paddle's current device)."""
        return cls(path, *read_export(path), device=device)

    def __call__(self, **inputs) -> dict:
        for name, array in self._arrays(inputs).items():
            handle = self._predictor.get_input_handle(name)
            handle.reshape(array.shape)
            handle.copy_from_cpu(array)
        self._predictor.run()
        return {
            name: self._predictor.get_output_handle(fetch).copy_to_cpu()
            for name, fetch in zip(self.output_names, self._outputs, strict=True)
        }


class OnnxModel(_Exported):
    """The model.onnx of an exported folder run by ONNX Runtime on the CPU, with InferenceModel's interface."""

    def __init__(self, path: str, info: dict, config: VisualBertConfig):
        super().__init__(path, info, config)
        if not info.get("onnx_model"):
            raise FileNotFoundError(f"{path}: exported without ONNX (export with --onnx)")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = math_threads()
        self._session = onnxruntime.InferenceSession(
            os.path.join(path, info["onnx_model"]), options, providers=["CPUExecutionProvider"]
        )

    @classmethod
    def from_dir(cls, path: str) -> "OnnxModel":
        return cls(path, *read_export(path))

    def __call__(self, **inputs) -> dict:
        return dict(zip(self.output_names, self._session.run(self.output_names, self._arrays(inputs)), strict=True))


def add_inference_model_arg(parser):
    """--inference_model, the prediction entry points' alternative to --model_name_or_path."""
    parser.add_argument(
        "--inference_model",
        help="an exported folder (checkpoint/export.py) to predict with Paddle Inference, instead of "
        "--model_name_or_path",
    )


def use_inference_model(args):
    """With --inference_model, that folder stands for the model wherever --model_name_or_path is read: the run's
    setup and the tokenizer (an export holds the model's tokenizer files). Call it before `setup`."""
    if args.inference_model:
        if args.model_name_or_path:
            raise ValueError("give --model_name_or_path or --inference_model, not both")
        args.model_name_or_path = args.inference_model


def prediction_model(args, task: str):
    """The InferenceModel of --inference_model (exported for `task`), else the task's head loaded from
    --model_name_or_path. Both have `.config`, and `batched_outputs` takes either."""
    if not args.inference_model:
        return TASKS[task][0].from_pretrained(args.model_name_or_path)
    model = InferenceModel.from_dir(args.inference_model)
    if model.task != task:
        raise ValueError(f"{args.inference_model} is exported for {model.task}, not {task}")
    return model
