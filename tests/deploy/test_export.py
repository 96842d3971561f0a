"""Export to Paddle Inference and ONNX: parity with the eager heads, the CLI's bad inputs, and the prediction entry
points run on an export giving the eager model's files."""

import importlib.util
import json
import os

import alignment as compare
import numpy as np
import paddle
import pytest

from paddlenlp_ext import cpu_backend
from paddlenlp_ext.deploy import InferenceModel, OnnxModel, export
from paddlenlp_ext.deploy.export import INPUTS
from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.training.args import run
from paddlenlp_ext.transformers import (
    VisualBertConfig,
    VisualBertForQuestionAnswering,
    VisualBertForVisualReasoning,
    modeling,
)

ARCHITECTURES = {
    "vqa": "VisualBertForQuestionAnswering",
    "nlvr2": "VisualBertForVisualReasoning",
    "pretrain": "VisualBertForPreTraining",
}
# Two padded batches of different batch size, text length and box count: the export's dims are dynamic.
SHAPES = [
    dict(batch_size=4, text_length=12, num_boxes=10, seed=1),
    dict(batch_size=2, text_length=7, num_boxes=5, seed=2),
]


def _main_of(relative_path: str):
    """main(argv) of a script of the checkout, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        relative_path.replace("/", "_")[:-3], os.path.join(REPO_ROOT, relative_path)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _saved(folder, architecture, config):
    paddle.seed(3)
    getattr(modeling, architecture)(config).save_pretrained(str(folder))
    return str(folder)


@pytest.mark.parametrize("task", list(ARCHITECTURES))
def test_export_gives_the_eager_outputs(tiny, tmp_path, task):
    """Paddle Inference within 1e-5 of the eager model, ONNX Runtime within 1e-4, on two padded batch shapes: both
    against modeling.py's path (the CPU backend off), which is the traced program's, and the default CPU path (the
    fused backend)."""
    architecture = ARCHITECTURES[task]
    model_dir = _saved(tmp_path / "model", architecture, tiny[1](num_labels=5))
    dst = export(model_dir, task, str(tmp_path / "export"), onnx=True)
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert info["task"] == task and [spec["name"] for spec in info["inputs"]] == list(INPUTS)
    inference, onnx = InferenceModel.from_dir(dst), OnnxModel.from_dir(dst)
    assert inference.task == onnx.task == task and inference.config.visual_embedding_dim == 16
    assert [o.name for o in onnx._session.get_outputs()] == inference.output_names

    eager_model = getattr(modeling, architecture).from_pretrained(model_dir).eval()
    for shape in SHAPES:
        inputs = {name: compare.make_inputs(architecture, eager_model.config, **shape)[name] for name in INPUTS}
        assert inputs["attention_mask"].min() == 0 and inputs["visual_attention_mask"].min() == 0
        tensors = {name: paddle.to_tensor(value) for name, value in inputs.items()}
        with paddle.no_grad():
            fused = eager_model(**tensors, return_dict=True)
            with cpu_backend.disabled():
                plain = eager_model(**tensors, return_dict=True)
        inferred, onnx_out = inference(**inputs), onnx(**inputs)
        assert list(inferred) == list(onnx_out) == inference.output_names
        for name in inference.output_names:
            assert inferred[name].shape == tuple(plain[name].shape)
            for eager in (plain[name].numpy(), fused[name].numpy()):
                # The MLM logits reach |6| at the tiny config (initializer_range 0.3), and Paddle Inference's oneDNN
                # matmuls round differently (1.4e-5 measured): 1e-5 relative to their largest value.
                scale = np.abs(eager).max() if name == "prediction_logits" else 1.0
                np.testing.assert_allclose(inferred[name], eager, rtol=0, atol=1e-5 * scale, err_msg=name)
                np.testing.assert_allclose(onnx_out[name], eager, rtol=0, atol=1e-4 * scale, err_msg=name)


def test_inputs_are_checked_by_name(tiny, tmp_path):
    dst = export(_saved(tmp_path / "m", "VisualBertForVisualReasoning", tiny[1]()), "nlvr2", str(tmp_path / "e"))
    model = InferenceModel.from_dir(dst)
    inputs = compare.make_inputs("VisualBertForVisualReasoning", model.config)
    with pytest.raises(ValueError, match=r"missing \['visual_attention_mask'\], unexpected \['labels'\]"):
        model(**{name: inputs[name] for name in INPUTS[:-1]}, labels=inputs["labels"])
    with pytest.raises(FileNotFoundError, match="exported without ONNX"):
        OnnxModel.from_dir(dst)


def _fails(capsys, argv, *fragments):
    assert _main_of("checkpoint/export.py")(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and all(f in err for f in fragments), err


def test_cli_bad_inputs_fail_with_one_line_and_write_nothing(tiny, tmp_path, capsys, monkeypatch):
    nlvr2 = _saved(tmp_path / "nlvr2", "VisualBertForVisualReasoning", tiny[1]())
    dst = tmp_path / "out" / "export"
    _fails(capsys, ["--model", str(tmp_path / "nowhere"), "--task", "vqa", "--dst", str(dst)], "nowhere")
    _fails(capsys, ["--model", nlvr2, "--task", "vcr", "--dst", str(dst)], "'vcr'", "vqa, nlvr2, pretrain")
    _fails(capsys, ["--model", nlvr2, "--task", "vqa", "--dst", str(dst)], nlvr2, "VisualBertForQuestionAnswering")
    _fails(capsys, ["--model", nlvr2, "--task", "nlvr2", "--dst", nlvr2], "would replace the model folder")
    assert not os.path.exists(tmp_path / "out")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    _fails(capsys, ["--model", nlvr2, "--task", "nlvr2", "--dst", str(busy)], "is not an export")
    assert os.listdir(busy) == ["notes.txt"]

    # a conversion failing after the Paddle model is written leaves an earlier export as it was
    assert _main_of("checkpoint/export.py")(["--model", nlvr2, "--task", "nlvr2", "--dst", str(dst)]) == 0
    assert f"-> {dst}" in capsys.readouterr().out
    before = sorted(os.listdir(dst))
    import paddle2onnx

    def broken(*args, **kwargs):
        raise UnboundLocalError("onnx_model_str")  # what paddle2onnx raises after logging a conversion error

    monkeypatch.setattr(paddle2onnx, "export", broken)
    _fails(capsys, ["--model", nlvr2, "--task", "nlvr2", "--dst", str(dst), "--onnx"], "paddle2onnx could not")
    assert sorted(os.listdir(dst)) == before and "model.onnx" not in before
    assert sorted(os.listdir(dst.parent)) == ["export"]  # no temporary folder left behind

    with pytest.raises(FileNotFoundError, match=f"{tmp_path}: not an exported model"):
        InferenceModel.from_dir(str(tmp_path))


def _predict(script, argv):
    return run(lambda: _main_of(script)(argv))


def test_vqa_predict_from_an_export_writes_the_eager_files(sample_dir, tokenizer, answers, tmp_path, capsys):
    paddle.seed(5)
    config = VisualBertConfig(vocab_size=len(tokenizer.vocab), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, visual_embedding_dim=2048,
                              num_labels=len(answers), initializer_range=0.3)  # fmt: skip
    model_dir = str(tmp_path / "model")
    VisualBertForQuestionAnswering(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    export(model_dir, "vqa", str(tmp_path / "export"))
    assert os.path.isfile(tmp_path / "export" / "vocab.txt")
    common = ["--input_dir", str(sample_dir / "coco"), "--split", "val", "--top_k", "3", "--num_workers", "0",
              "--batch_size", "8"]  # fmt: skip
    eager, exported = tmp_path / "eager", tmp_path / "exported"
    assert (
        _predict("VQA2/run_predict.py", common + ["--model_name_or_path", model_dir, "--output_dir", str(eager)]) == 0
    )
    argv = common + ["--inference_model", str(tmp_path / "export"), "--output_dir", str(exported)]
    assert _predict("VQA2/run_predict.py", argv) == 0
    result = (eager / "result.json").read_bytes()
    assert result == (exported / "result.json").read_bytes()
    assert len({entry["answer"] for entry in json.loads(result)}) > 1  # not a constant answer that any model gives
    topk = [json.loads((folder / "result_topk.json").read_text()) for folder in (eager, exported)]
    assert [e["answers"] for e in topk[0]] == [e["answers"] for e in topk[1]]
    np.testing.assert_allclose([e["probs"] for e in topk[0]], [e["probs"] for e in topk[1]], rtol=1e-5, atol=1e-6)

    capsys.readouterr()  # an export of the other task ends with one line
    argv = ["--input_dir", str(sample_dir / "nlvr2"), "--inference_model", str(tmp_path / "export"),
            "--output_dir", str(tmp_path / "x"), "--split", "dev"]  # fmt: skip
    assert _predict("NLVR2/run_predict.py", argv) == 2
    assert f"{tmp_path / 'export'} is exported for vqa, not nlvr2" in capsys.readouterr().err


def test_nlvr2_predict_from_an_export_writes_the_eager_files(sample_dir, tokenizer, tmp_path, capsys):
    paddle.seed(2)  # a random model that predicts both labels on the sample (seed 1 answers True throughout)
    config = VisualBertConfig(vocab_size=len(tokenizer.vocab), hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64, visual_embedding_dim=1024,
                              initializer_range=0.3)  # fmt: skip
    model_dir = str(tmp_path / "model")
    VisualBertForVisualReasoning(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    export(model_dir, "nlvr2", str(tmp_path / "export"))
    common = ["--input_dir", str(sample_dir / "nlvr2"), "--split", "test1", "--num_workers", "0", "--batch_size", "4"]
    eager, exported = tmp_path / "eager", tmp_path / "exported"
    assert (
        _predict("NLVR2/run_predict.py", common + ["--model_name_or_path", model_dir, "--output_dir", str(eager)]) == 0
    )
    argv = common + ["--inference_model", str(tmp_path / "export"), "--output_dir", str(exported)]
    assert _predict("NLVR2/run_predict.py", argv) == 0
    csv = (eager / "predictions_test1.csv").read_text()
    assert csv == (exported / "predictions_test1.csv").read_text()
    assert {line.split(",")[1] for line in csv.splitlines()} == {"True", "False"}  # the rows do say something
    assert (eager / "metrics_test1.json").read_text() == (exported / "metrics_test1.json").read_text()

    capsys.readouterr()
    assert _predict("NLVR2/run_predict.py", argv + ["--model_name_or_path", model_dir]) == 2
    assert "give --model_name_or_path or --inference_model, not both" in capsys.readouterr().err
