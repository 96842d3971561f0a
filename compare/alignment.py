"""Numerical alignment with HF transformers' VisualBERT: identical inputs through both models, every output, the
loss and (optionally) every gradient compared against stated tolerances. Used by the compare_*.py scripts beside
this file and by the tests."""

import argparse
import json
import os
import sys
import tempfile

import numpy as np
import paddle

from paddlenlp_ext.paths import CHECKPOINT_HOME, REPO_ROOT
from paddlenlp_ext.transformers.visualbert import convert, modeling
from paddlenlp_ext.transformers.visualbert.configuration import PRETRAINED_CHECKPOINTS

# Absolute max |delta| per output; the loss and gradients are compared relative to the HF magnitude.
TOLERANCES = {
    "logits": 2e-5,
    "seq_relationship_logits": 2e-5,
    "prediction_logits": 1e-4,  # fp32 accumulation over a 30522-wide output
    "last_hidden_state": 1e-4,
    "hidden_states": 1e-4,
    "output_relative": 1e-5,  # added to the absolute tolerance of each output, times |HF's value|
    "loss_relative": 1e-5,
    "grad_relative": 1e-4,
}

# HF's integration tests on the real weights (atol 1e-4), inputs as in golden_inputs().
GOLDEN = {
    "visualbert-vqa": ("logits", (slice(None), slice(0, 3)), [[-8.9898, 3.0803, -1.8016]]),
    "visualbert-nlvr2": ("logits", (slice(None), slice(None)), [[-1.1436, 0.8900]]),
    "visualbert-vqa-coco-pre": ("seq_relationship_logits", (slice(None), slice(None)), [[0.7393, 0.1754]]),
}


def hf_config(architecture: str, visual_embedding_dim: int, num_labels: int, **overrides):
    """A transformers VisualBertConfig (BERT-base unless overridden) as the released checkpoints have."""
    import transformers

    return transformers.VisualBertConfig(
        visual_embedding_dim=visual_embedding_dim, num_labels=num_labels, architectures=[architecture], **overrides
    )


def random_hf_model(architecture: str, config, seed: int = 0):
    import torch
    import transformers

    torch.manual_seed(seed)
    return getattr(transformers, architecture)(config).eval()


def make_inputs(architecture: str, config, batch_size: int = 3, text_length: int = 12, num_boxes: int = 10, seed=0):
    """Numpy inputs with padding in text and boxes, mixed visual token types and labels for the head's loss."""
    rng = np.random.default_rng(seed)
    choices = 2 if architecture == "VisualBertForMultipleChoice" else None
    lead = (batch_size, choices) if choices else (batch_size,)
    n = int(np.prod(lead))
    text_lengths = rng.integers(text_length // 2, text_length, n)  # every row after the first is padded
    text_lengths[0] = text_length
    box_counts = rng.integers(num_boxes // 2, num_boxes, n)
    box_counts[0] = num_boxes
    input_ids = rng.integers(0, config.vocab_size, (n, text_length))
    input_ids[:, 0] = config.pad_token_id  # its lookup passes no gradient in HF (padding_idx)
    attention_mask = (np.arange(text_length) < text_lengths[:, None]).astype("int64")
    input_ids = input_ids * attention_mask
    inputs = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": (np.arange(text_length) >= text_lengths[:, None] // 2).astype("int64") * attention_mask,
        "visual_embeds": rng.normal(0, 1, (n, num_boxes, config.visual_embedding_dim)).astype("float32"),
        "visual_attention_mask": (np.arange(num_boxes) < box_counts[:, None]).astype("int64"),
        "visual_token_type_ids": (np.arange(num_boxes) >= num_boxes // 2).astype("int64").repeat(n).reshape(
            num_boxes, n).T.copy(),
    }  # fmt: skip
    if choices:
        inputs = {k: v.reshape(lead + v.shape[1:]) for k, v in inputs.items()}
    if architecture == "VisualBertForPreTraining":
        labels = np.full((batch_size, text_length + num_boxes), -100, "int64")
        masked = (rng.random((batch_size, text_length)) < 0.3) & (attention_mask == 1)
        masked[:, 1] = True
        labels[:, :text_length][masked] = rng.integers(0, config.vocab_size, masked.sum())
        inputs["labels"] = labels
        inputs["sentence_image_labels"] = rng.integers(0, 2, batch_size)
    elif architecture == "VisualBertForQuestionAnswering":
        scores = np.zeros((batch_size, config.num_labels), "float32")
        for row in scores:
            row[rng.choice(config.num_labels, 3, replace=False)] = [1.0, 0.6, 0.3]
        inputs["labels"] = scores
    elif architecture in ("VisualBertForVisualReasoning", "VisualBertForMultipleChoice"):
        inputs["labels"] = rng.integers(0, choices or config.num_labels, batch_size)
    elif architecture == "VisualBertForRegionToPhraseAlignment":
        phrases = 4
        inputs["region_to_phrase_position"] = rng.integers(1, text_length // 2, (batch_size, phrases))
        inputs["region_to_phrase_position"][:, -1] = -1
        target = (
            rng.random((batch_size, phrases, num_boxes)).astype("float32") * inputs["visual_attention_mask"][:, None]
        )
        inputs["labels"] = target / target.sum(-1, keepdims=True)
    return inputs


def golden_inputs(visual_embedding_dim: int):
    """The inputs of HF's integration tests."""
    return {
        "input_ids": np.array([[1, 2, 3, 4, 5, 6]], "int64"),
        "token_type_ids": np.array([[0, 0, 0, 1, 1, 1]], "int64"),
        "attention_mask": np.ones((1, 6), "int64"),
        "visual_embeds": np.full((1, 10, visual_embedding_dim), 0.5, "float32"),
        "visual_token_type_ids": np.ones((1, 10), "int64"),
        "visual_attention_mask": np.ones((1, 10), "int64"),
    }


def _numpy_outputs(output, as_numpy):
    result = {}
    for key, value in output.items():
        if value is None:
            continue
        if isinstance(value, (tuple, list)):
            result[key] = np.stack([as_numpy(v) for v in value])
        else:
            result[key] = as_numpy(value)
    return result


def run_hf(model, inputs: dict, grads: bool = False):
    """(outputs, {paddle-layout parameter name: grad}) of an HF model."""
    import torch

    tensors = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
    model.zero_grad(set_to_none=True)
    with torch.set_grad_enabled(grads):
        output = model(**tensors, output_hidden_states=True, return_dict=True)
        if grads:
            output.loss.backward()
    outputs = _numpy_outputs(output, lambda t: t.detach().numpy())
    if not grads:
        return outputs, {}
    gradients = {}
    for name, param in model.named_parameters():
        if param.grad is not None:
            g = param.grad.numpy()
            gradients[name] = g.T if convert.is_linear_weight(name) else g
    return outputs, gradients


def run_paddle(model, inputs: dict, grads: bool = False):
    """(outputs, {parameter name: grad}) of a Paddle model.

    The pretraining head's loss and gradients are those of its default path (with labels, the MLM head on the
    labelled positions only, what training runs); its prediction_logits are those of a second forward with
    output_all_logits=True, every position's, which HF returns."""
    tensors = {k: paddle.to_tensor(np.asarray(v)) for k, v in inputs.items()}
    model.clear_gradients()
    with paddle.set_grad_enabled(grads):
        output = model(**tensors, output_hidden_states=True, return_dict=True)
        if grads:
            output.loss.backward()
    outputs = _numpy_outputs(output, lambda t: t.numpy())
    if isinstance(model, modeling.VisualBertForPreTraining) and "labels" in tensors:
        with paddle.no_grad():
            every_position = model(**tensors, output_all_logits=True, return_dict=True)
        outputs["prediction_logits"] = every_position.prediction_logits.numpy()
    gradients = {}
    if grads:
        gradients = {name: p.grad.numpy() for name, p in model.named_parameters() if p.grad is not None}
    return outputs, gradients


def prediction_differences(hf_model, pd_model, inputs: dict) -> dict:
    """{"<output> in prediction": row} for the models' first output in prediction: eval mode, no gradient and no hidden
    states asked, the path on which this project's heads leave out the padding and fuse the attention (CPU)."""
    import torch

    features = {k: np.asarray(v) for k, v in inputs.items() if "labels" not in k}
    with torch.no_grad():
        hf_output = hf_model(**{k: torch.from_numpy(v) for k, v in features.items()}, return_dict=True)
    with paddle.no_grad():
        pd_output = pd_model(**{k: paddle.to_tensor(v) for k, v in features.items()}, return_dict=True)
    key = next(iter(hf_output.keys()))
    row = differences({key: hf_output[key].numpy()}, {key: pd_output[key].numpy()})[key]
    return {f"{key} in prediction": row}


def _analytically_zero(name, grad):
    """Gradients that are exactly zero in exact arithmetic: a bias added to every key (softmax ignores a shift shared
    by all keys of a query) and MultipleChoice's one-element cls.bias (shared by every choice)."""
    return name.endswith("key.bias") or (name == "cls.bias" and grad.size == 1)


def differences(hf_outputs: dict, pd_outputs: dict, hf_grads=None, pd_grads=None) -> dict:
    """{name: {"max": .., "mean": .., "tolerance": .., "ok": ..}} for every output, the loss and the gradients."""
    report = {}
    if set(hf_outputs) != set(pd_outputs):
        raise AssertionError(f"outputs differ: HF {sorted(hf_outputs)} vs Paddle {sorted(pd_outputs)}")
    for key in hf_outputs:
        a, b = hf_outputs[key].astype("float64"), pd_outputs[key].astype("float64")
        if a.shape != b.shape:
            raise AssertionError(f"{key}: HF shape {a.shape} vs Paddle {b.shape}")
        delta = np.abs(a - b)
        if key == "loss":
            rel = float(delta.max() / max(np.abs(a).max(), 1e-12))
            report[key] = {"max": float(delta.max()), "relative": rel, "tolerance": TOLERANCES["loss_relative"]}
            report[key]["ok"] = rel <= TOLERANCES["loss_relative"]
            continue
        tol = TOLERANCES[key]
        report[key] = {"max": float(delta.max()), "mean": float(delta.mean()), "tolerance": tol}
        # plus fp32's accumulated rounding of large values (a region-to-phrase score of 8 moved by 3e-5 on AVX2)
        report[key]["ok"] = bool((delta <= tol + TOLERANCES["output_relative"] * np.abs(a)).all())
    if hf_grads is not None:
        if set(hf_grads) != set(pd_grads):
            raise AssertionError(f"gradients differ in keys: {sorted(set(hf_grads) ^ set(pd_grads))[:8]}")
        # Relative to the tensor's largest gradient, floored at 1% of the model's largest: a gradient that is a sum
        # of cancelling terms (the sentence-image bias: +-0.3 per example summing to 3e-4) keeps only the fp32
        # rounding of its terms, which no implementation can beat relative to the small sum.
        floor = 1e-2 * max(float(np.abs(g).max()) for g in hf_grads.values())
        worst, worst_name, zero_worst = 0.0, None, 0.0
        for name in hf_grads:
            delta = float(np.abs(hf_grads[name] - pd_grads[name]).max())
            if _analytically_zero(name, hf_grads[name]):
                zero_worst = max(zero_worst, delta)
                continue
            rel = delta / max(float(np.abs(hf_grads[name]).max()), floor)
            if rel >= worst:
                worst, worst_name = rel, name
        tol = TOLERANCES["grad_relative"]
        report["gradients"] = {"max_relative": worst, "worst": worst_name, "count": len(hf_grads), "tolerance": tol}
        report["gradients"]["ok"] = worst <= tol
        # these are rounding noise around 0 in both frameworks: bound them absolutely (the loss is O(1))
        report["zero_gradients"] = {"max": zero_worst, "tolerance": 1e-6, "ok": zero_worst <= 1e-6}
    return report


def paddle_from_hf(hf_model, architecture: str, workdir: str):
    """Save an HF model, convert the folder with the converter, and load it with <architecture>.from_pretrained."""
    hf_dir, pd_dir = os.path.join(workdir, "hf"), os.path.join(workdir, "paddle")
    hf_model.save_pretrained(hf_dir)
    convert.convert_hf_checkpoint(hf_dir, pd_dir)
    return getattr(modeling, architecture).from_pretrained(pd_dir).eval()


def compare_checkpoint(name: str, hf_dir=None, paddle_dir=None, random_init=False, grads=True, seed=0) -> dict:
    """Compare one of the nine checkpoints (or, with random_init, a random model at its exact config)."""
    import transformers

    architecture, dim, num_labels = PRETRAINED_CHECKPOINTS[name]
    with tempfile.TemporaryDirectory() as workdir:
        if random_init:
            hf_model = random_hf_model(architecture, hf_config(architecture, dim, num_labels), seed)
            pd_model = paddle_from_hf(hf_model, architecture, workdir)
        else:
            hf_dir = hf_dir or os.path.join(REPO_ROOT, "checkpoint", "uclanlp", name)
            paddle_dir = paddle_dir or os.path.join(CHECKPOINT_HOME, name)
            for folder in (hf_dir, paddle_dir):
                if not os.path.isdir(folder):
                    raise FileNotFoundError(f"{folder}: not found (use --random_init to compare without weights)")
            hf_model = getattr(transformers, architecture).from_pretrained(hf_dir).eval()
            pd_model = getattr(modeling, architecture).from_pretrained(paddle_dir).eval()
        inputs = make_inputs(architecture, pd_model.config, seed=seed)
        hf_out, hf_grads = run_hf(hf_model, inputs, grads)
        pd_out, pd_grads = run_paddle(pd_model, inputs, grads)
        report = differences(hf_out, pd_out, hf_grads if grads else None, pd_grads if grads else None)
        report.update(prediction_differences(hf_model, pd_model, inputs))
        if not random_init and name in GOLDEN:
            key, index, expected = GOLDEN[name]
            got = run_paddle(pd_model, golden_inputs(dim))[0][key][index]
            delta = float(np.abs(got - np.array(expected)).max())
            report["golden"] = {"max": delta, "tolerance": 1e-4, "ok": delta <= 1e-4}
    return report


def format_report(name: str, report: dict) -> str:
    lines = [name]
    for key, row in report.items():
        figures = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "ok"
        )
        lines.append(f"  {'ok  ' if row['ok'] else 'FAIL'} {key}: {figures}")
    return "\n".join(lines)


def main(name: str, argv=None) -> int:
    """CLI of compare/compare_<task>.py: print max and mean |delta| of every output; non-zero exit beyond tolerance."""
    parser = argparse.ArgumentParser(description=f"Compare {name} between HF transformers and Paddle.")
    parser.add_argument("--hf_dir", help="HF checkpoint folder (default checkpoint/uclanlp/<name>)")
    parser.add_argument("--paddle_dir", help="converted folder (default checkpoint/paddle_visualbert/<name>)")
    parser.add_argument("--random_init", action="store_true", help="a random HF model at this config: no download")
    parser.add_argument("--no_grads", action="store_true", help="compare outputs only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        report = compare_checkpoint(name, args.hf_dir, args.paddle_dir, args.random_init, not args.no_grads, args.seed)
    except (FileNotFoundError, convert.ConversionError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_report(name, report))
    return 0 if all(row["ok"] for row in report.values()) else 1


def main_all(argv=None) -> int:
    """CLI of compare/compare_all.py: the nine comparisons and a JSON report."""
    parser = argparse.ArgumentParser(description="Compare all nine VisualBERT checkpoints with HF transformers.")
    parser.add_argument("--random_init", action="store_true", help="random models at each exact config")
    parser.add_argument("--no_grads", action="store_true")
    parser.add_argument("--report", default="compare_report.json", help="where to write the JSON report")
    args = parser.parse_args(argv)
    reports, failed = {}, []
    for name in PRETRAINED_CHECKPOINTS:
        try:
            reports[name] = compare_checkpoint(name, random_init=args.random_init, grads=not args.no_grads)
        except (FileNotFoundError, convert.ConversionError) as e:
            reports[name] = {"error": str(e)}
            failed.append(name)
            print(f"{name}: error: {e}", file=sys.stderr)
            continue
        print(format_report(name, reports[name]), flush=True)
        if not all(row["ok"] for row in reports[name].values()):
            failed.append(name)
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump({"random_init": args.random_init, "tolerances": TOLERANCES, "checkpoints": reports}, f, indent=2)
    print(f"report: {os.path.abspath(args.report)}; {len(PRETRAINED_CHECKPOINTS) - len(failed)}/9 within tolerance")
    return 1 if failed else 0
