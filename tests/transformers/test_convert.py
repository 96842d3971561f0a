"""The converter: both checkpoint formats, the transpose list, the CLI, and every way a bad checkpoint must fail
(one line naming the file or keys, non-zero exit, the destination untouched)."""

import importlib.util
import json
import os
import subprocess
import sys

import alignment as compare
import numpy as np
import paddle
import pytest
import torch
import transformers

from paddlenlp_ext.paths import REPO_ROOT
from paddlenlp_ext.transformers.visualbert import convert, modeling

CLI = os.path.join(REPO_ROOT, "checkpoint", "convert.py")


def load_cli():
    spec = importlib.util.spec_from_file_location("convert_cli", CLI)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hf_checkpoint(tiny, tmp_path):
    """Write a tiny HF checkpoint of a class; returns (folder, model)."""

    def make(architecture="VisualBertForPreTraining", safe=True, name="hf", **overrides):
        torch.manual_seed(0)
        model = getattr(transformers, architecture)(tiny[0](architecture, **overrides)).eval()
        folder = str(tmp_path / name)
        model.save_pretrained(folder, safe_serialization=safe)
        return folder, model

    return make


@pytest.fixture
def existing_dst(tmp_path):
    """A destination that already holds a file: a failed conversion must leave it as it was."""
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("previous")
    return dst


def assert_untouched(dst):
    assert sorted(os.listdir(dst)) == ["keep.txt"] and (dst / "keep.txt").read_text() == "previous"
    assert not [p for p in os.listdir(dst.parent) if p.startswith(".out.")], "temporary folder left behind"


def test_transpose_list_is_exactly_the_linear_weights(tiny):
    config = tiny[1](bypass_transformer=True)
    for architecture in convert.HEAD_CLASSES:
        model = getattr(modeling, architecture)(config)
        linear = {
            f"{prefix}.weight" if prefix else "weight"
            for prefix, layer in model.named_sublayers(include_self=True)
            if isinstance(layer, paddle.nn.Linear)
        }
        names = set(model.state_dict())
        assert {n for n in names if convert.is_linear_weight(n)} == linear, architecture


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_converted_folder_loads_and_matches(hf_checkpoint, tmp_path, safe):
    src, hf_model = hf_checkpoint("VisualBertForQuestionAnswering", safe=safe, num_labels=6)
    dst = str(tmp_path / "paddle")
    assert convert.convert_hf_checkpoint(src, dst) == "VisualBertForQuestionAnswering"
    model = modeling.VisualBertForQuestionAnswering.from_pretrained(dst).eval()
    assert model.config.num_labels == 6
    inputs = compare.make_inputs("VisualBertForQuestionAnswering", model.config)
    report = compare.differences(compare.run_hf(hf_model, inputs)[0], compare.run_paddle(model, inputs)[0])
    assert all(row["ok"] for row in report.values()), report


def test_cli_converts_one_checkpoint_and_back(hf_checkpoint, tmp_path):
    src, hf_model = hf_checkpoint("VisualBertForVisualReasoning")
    cli = load_cli()
    assert cli.main(["--src", src, "--dst", str(tmp_path / "pd")]) == 0
    assert cli.main(["--to_hf", "--src", str(tmp_path / "pd"), "--dst", str(tmp_path / "back")]) == 0
    back = transformers.VisualBertForVisualReasoning.from_pretrained(str(tmp_path / "back"))
    for key, value in hf_model.state_dict().items():
        assert torch.equal(value, back.state_dict()[key]), key


def test_cli_converts_every_checkpoint_found_and_names_the_missing(hf_checkpoint, tmp_path, monkeypatch, capsys):
    src, _ = hf_checkpoint("VisualBertForMultipleChoice", name="uclanlp/visualbert-vcr")
    cli = load_cli()
    monkeypatch.setattr(cli, "HF_HOME", str(tmp_path / "uclanlp"))
    monkeypatch.setattr(cli, "CHECKPOINT_HOME", str(tmp_path / "paddle_visualbert"))
    assert cli.main([]) == 0
    assert os.path.exists(tmp_path / "paddle_visualbert" / "visualbert-vcr" / "model_state.pdparams")
    err = capsys.readouterr().err
    assert "visualbert-vqa" in err and "visualbert-vcr-pre" in err and "visualbert-vcr," not in err
    monkeypatch.setattr(cli, "HF_HOME", str(tmp_path / "nothing"))
    assert cli.main([]) == 2


def test_cli_failure_is_one_line_and_non_zero(hf_checkpoint, existing_dst):
    src, _ = hf_checkpoint()
    with open(os.path.join(src, "model.safetensors"), "r+b") as f:
        f.truncate(os.path.getsize(f.name) // 2)
    result = subprocess.run(
        [sys.executable, CLI, "--src", src, "--dst", str(existing_dst)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "model.safetensors" in last
    assert "Traceback" not in result.stderr
    assert_untouched(existing_dst)


def rewrite_weights(folder, edit):
    from safetensors.numpy import load_file, save_file

    path = os.path.join(folder, "model.safetensors")
    state = load_file(path)
    edit(state)
    save_file(state, path, metadata={"format": "pt"})


def rewrite_config(folder, **changes):
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    with open(path, "w") as f:
        json.dump(config, f)


BAD = {
    "corrupt bin": (
        dict(safe=False),
        lambda d: open(os.path.join(d, "pytorch_model.bin"), "wb").write(b"not a checkpoint"),
        "pytorch_model.bin: cannot read",
    ),
    "no weights": (dict(), lambda d: os.remove(os.path.join(d, "model.safetensors")), "neither model.safetensors"),
    "no config": (dict(), lambda d: os.remove(os.path.join(d, "config.json")), "config.json: file not found"),
    "broken config": (
        dict(),
        lambda d: open(os.path.join(d, "config.json"), "w").write("{"),
        "config.json: not valid JSON",
    ),
    "unknown architecture": (
        dict(),
        lambda d: rewrite_config(d, architectures=["VisualBertForSomethingElse"]),
        "VisualBertForSomethingElse",
    ),
    "wrong model type": (dict(), lambda d: rewrite_config(d, model_type="vilt"), "'vilt' is not visual_bert"),
    "wrong shape": (dict(), lambda d: rewrite_config(d, visual_embedding_dim=17), "visual_projection.weight"),
    "missing key": (
        dict(),
        lambda d: rewrite_weights(d, lambda s: s.pop("visual_bert.pooler.dense.bias")),
        "missing keys ['visual_bert.pooler.dense.bias']",
    ),
    "unexpected key": (
        dict(),
        lambda d: rewrite_weights(d, lambda s: s.update(extra=np.zeros(3, "float32"))),
        "unexpected keys ['extra']",
    ),
    "untied decoder": (
        dict(),
        lambda d: rewrite_weights(
            d, lambda s: s.update({"cls.predictions.decoder.weight": np.ones((99, 32), "float32")})
        ),
        "cls.predictions.decoder.weight differs",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_checkpoint_fails_clearly_and_writes_nothing(hf_checkpoint, existing_dst, case):
    options, damage, message = BAD[case]
    src, _ = hf_checkpoint(**options)
    damage(src)
    with pytest.raises(convert.ConversionError) as error:
        convert.convert_hf_checkpoint(src, str(existing_dst))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert_untouched(existing_dst)


def test_bad_paddle_folder_fails_clearly(tiny, tmp_path, existing_dst):
    model = modeling.VisualBertForVisualReasoning(tiny[1]())
    model.save_pretrained(str(tmp_path / "pd"))
    os.remove(tmp_path / "pd" / "model_state.pdparams")
    with pytest.raises(convert.ConversionError, match="model_state.pdparams: file not found"):
        convert.convert_paddle_to_hf(str(tmp_path / "pd"), str(existing_dst))
    assert_untouched(existing_dst)


def test_bert_checkpoint_is_rejected_without_a_visual_size(minilm_dir, tmp_path):
    with pytest.raises(convert.ConversionError, match="a BERT checkpoint"):
        convert.convert_hf_checkpoint(minilm_dir, str(tmp_path / "x"))
    assert not os.path.exists(tmp_path / "x")
