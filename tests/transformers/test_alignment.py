"""The nine published configurations at full BERT-base size: HF -> converter -> Paddle gives the same outputs, loss
and gradients within the project's tolerances, and Paddle -> HF gives back every tensor exactly."""

import os

import alignment as compare
import numpy as np
import pytest
import transformers

from paddlenlp_ext import cpu_backend
from paddlenlp_ext.cpu_backend import kernels
from paddlenlp_ext.transformers.visualbert import convert
from paddlenlp_ext.transformers.visualbert.configuration import PRETRAINED_CHECKPOINTS


@pytest.mark.parametrize("name", list(PRETRAINED_CHECKPOINTS))
def test_checkpoint_config_parity_and_round_trip(name, tmp_path):
    """Converted once, checked on both paths: the CPU backend and Paddle's own operators (what a GPU runs)."""
    architecture, dim, num_labels = PRETRAINED_CHECKPOINTS[name]
    seed = list(PRETRAINED_CHECKPOINTS).index(name)
    hf_model = compare.random_hf_model(architecture, compare.hf_config(architecture, dim, num_labels), seed)
    pd_model = compare.paddle_from_hf(hf_model, architecture, str(tmp_path))  # save, convert the folder, load
    assert pd_model.config.hidden_size == 768 and pd_model.config.num_hidden_layers == 12

    inputs = compare.make_inputs(architecture, pd_model.config, seed=seed)
    assert inputs["attention_mask"].min() == 0 and inputs["visual_attention_mask"].min() == 0  # padding in both
    assert len(np.unique(inputs["visual_token_type_ids"])) == 2
    hf_out, hf_grads = compare.run_hf(hf_model, inputs, grads=True)
    unused = 2 if architecture == "VisualBertForQuestionAnswering" else 0  # the pooler: QA reads the answer token
    for on in (True, False):
        with cpu_backend.switched(on):
            pd_out, pd_grads = compare.run_paddle(pd_model, inputs, grads=True)
        report = compare.differences(hf_out, pd_out, hf_grads, pd_grads)
        assert {"loss", "hidden_states", "gradients"} <= set(report)
        assert report["gradients"]["count"] == len(list(hf_model.parameters())) - unused
        label = f"{name} ({'CPU backend' if on else 'Paddle operators'})"
        assert all(row["ok"] for row in report.values()), compare.format_report(label, report)

    back = os.path.join(tmp_path, "back")
    assert convert.convert_paddle_to_hf(os.path.join(tmp_path, "paddle"), back) == architecture
    reloaded, info = getattr(transformers, architecture).from_pretrained(back, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    original, returned = hf_model.state_dict(), reloaded.state_dict()
    assert set(original) == set(returned)
    for key, value in original.items():
        assert np.array_equal(value.numpy(), returned[key].numpy()), key


@pytest.mark.parametrize("name", ["visualbert-vqa", "visualbert-nlvr2", "visualbert-vcr"])
def test_prediction_path_gives_hfs_logits(name, backend, tmp_path, monkeypatch):
    """Prediction (eval, no gradient, no hidden states asked): with the CPU backend, the fused attention on the
    batch's real rows only; without, modeling.py's padded batch. The logits are HF's within the tolerance either way
    (the row compare/compare_*.py reports as "logits in prediction")."""
    architecture, dim, num_labels = PRETRAINED_CHECKPOINTS[name]
    hf_model = compare.random_hf_model(architecture, compare.hf_config(architecture, dim, num_labels), seed=11)
    pd_model = compare.paddle_from_hf(hf_model, architecture, str(tmp_path))
    inputs = compare.make_inputs(architecture, pd_model.config, seed=11)
    keys = []
    attention = kernels.attention
    monkeypatch.setattr(kernels, "attention", lambda *a, **kw: keys.append(a[1].shape[0]) or attention(*a, **kw))
    report = compare.prediction_differences(hf_model, pd_model, inputs)
    real_rows = int(inputs["attention_mask"].sum() + inputs["visual_attention_mask"].sum())
    assert keys == ([real_rows] * 12 if backend == "cpu_backend" else [])  # every layer's keys: the real rows only
    assert list(report) == ["logits in prediction"] and report["logits in prediction"]["ok"], report
