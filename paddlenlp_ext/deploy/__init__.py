"""Deployment: export a VisualBERT head to Paddle Inference (and ONNX), run the exported folder, and answer one
example at a time (eager or exported)."""

from .export import TASKS, export
from .inference import (
    InferenceModel,
    OnnxModel,
    add_inference_model_arg,
    prediction_model,
    read_export,
    use_inference_model,
)
from .predictor import Nlvr2Predictor, VqaPredictor, load_features

__all__ = ["TASKS", "InferenceModel", "Nlvr2Predictor", "OnnxModel", "VqaPredictor", "add_inference_model_arg",
           "export", "load_features", "prediction_model", "read_export", "use_inference_model"]  # fmt: skip
