"""The backend's fused blocks against modeling.py's own path (the backend switched off through its public control):
the same outputs and gradients; where each applies and where it defers; the one switch."""

import subprocess
import sys

import numpy as np
import paddle
import pytest
from alignment import make_inputs

from paddlenlp_ext import cpu_backend
from paddlenlp_ext.cpu_backend import kernels, layers
from paddlenlp_ext.transformers.visualbert import modeling

FEW_ROWS_HEADS = ["VisualBertForQuestionAnswering", "VisualBertForVisualReasoning", "VisualBertForMultipleChoice"]


@pytest.fixture
def attention_keys(monkeypatch):
    """The shape of the keys of every kernels.attention call (the fused attention of inference)."""
    seen = []
    attention = kernels.attention
    monkeypatch.setattr(kernels, "attention", lambda *args, **kw: seen.append(args[1].shape) or attention(*args, **kw))
    return seen


def _tensors(architecture, config, **kwargs):
    return {k: paddle.to_tensor(v) for k, v in make_inputs(architecture, config, **kwargs).items()}


def test_every_model_gets_the_fused_blocks_and_keeps_its_parameters(tiny):
    model = modeling.VisualBertForPreTraining(tiny[1]())
    kinds = {type(layer) for layer in model.sublayers()}
    assert set(layers.FUSED.values()) <= kinds  # the pretraining model has a block of every kind
    assert not kinds & set(layers.FUSED)  # nothing left unswapped
    assert isinstance(model.visual_bert.encoder.layer[0].attention.self, modeling.VisualBertSelfAttention)
    names = [name for name, _ in model.named_parameters()]
    assert "visual_bert.encoder.layer.0.attention.self.query.weight" in names
    assert cpu_backend.apply(model) is model and {type(layer) for layer in model.sublayers()} == kinds  # idempotent


def test_the_switch(monkeypatch):
    assert cpu_backend.enabled()  # on by default
    with cpu_backend.disabled():
        assert not cpu_backend.enabled() and not cpu_backend.runs_on(paddle.zeros([2]))
    assert cpu_backend.runs_on(paddle.zeros([2]), None)
    assert not cpu_backend.runs_on(paddle.zeros([2], "float64"))
    paddle.enable_static()  # as under paddle.jit.to_static: the model is traced as modeling.py writes it
    try:
        assert not cpu_backend.runs_on(paddle.static.data("x", [2], "float32"))
    finally:
        paddle.disable_static()
    script = "import paddlenlp_ext.cpu_backend as b; print(b.enabled())"
    for value, expected in (("0", "False"), ("1", "True")):
        env = {"VISUALBERT_CPU_KERNELS": value, "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == expected


@pytest.mark.parametrize("architecture", ["VisualBertForPreTraining", *FEW_ROWS_HEADS])
def test_model_with_the_backend_equals_model_without(tiny, monkeypatch, architecture):
    """Forward in eval mode and every parameter's gradient in train mode (dropout off, so neither draws)."""
    paddle.seed(3)
    config = tiny[1](hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=7)
    model = getattr(modeling, architecture)(config)
    inputs = _tensors(architecture, config, seed=3)
    features = {k: v for k, v in inputs.items() if "labels" not in k}

    def run():
        model.eval()
        with paddle.no_grad():
            logits = model(**features)[0].numpy()
        model.train()
        model.clear_gradients()
        model(**inputs, return_dict=True).loss.backward()
        return logits, {name: param.grad.numpy() for name, param in model.named_parameters() if param.grad is not None}

    used = ("split_heads", "masked_softmax", "bias_gelu", "bias_dropout_add_norm", "layer_norm", "attention")
    calls = []
    for name in used:
        original = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _f=original, _n=name, **kw: calls.append(_n) or _f(*a, **kw))
    with_backend = run()
    monkeypatch.undo()
    assert set(calls) == set(used)  # inference took the fused attention, training the kernels around the matmuls
    with cpu_backend.disabled():
        without = run()
    np.testing.assert_allclose(with_backend[0], without[0], rtol=1e-5, atol=1e-5)
    assert with_backend[1].keys() == without[1].keys() and len(without[1]) > 10
    for name, grad in without[1].items():  # the key bias's gradient is 0 up to rounding (softmax is shift-invariant)
        atol = max(1e-4 * np.abs(grad).max(), 1e-6)
        np.testing.assert_allclose(with_backend[1][name], grad, rtol=1e-4, atol=atol, err_msg=name)


@pytest.mark.parametrize("architecture", FEW_ROWS_HEADS)
def test_prediction_leaves_out_the_padding_with_the_same_numbers(tiny, attention_keys, architecture):
    """In prediction (eval, no gradient), the heads that read a few positions run every layer on the real rows only,
    with the fused attention; their logits are modeling.py's on the padded batch."""
    model = getattr(modeling, architecture)(tiny[1](num_labels=7)).eval()
    inputs = make_inputs(architecture, model.config, batch_size=4, seed=8)
    features = {k: paddle.to_tensor(v) for k, v in inputs.items() if "labels" not in k}
    real_rows = int(inputs["attention_mask"].sum() + inputs["visual_attention_mask"].sum())
    assert real_rows < inputs["attention_mask"].size + inputs["visual_attention_mask"].size  # there is padding

    def logits():
        with paddle.no_grad():
            return model(**features, return_dict=True).logits.numpy()

    unpadded = logits()
    assert attention_keys == [[real_rows, model.config.hidden_size]] * model.config.num_hidden_layers
    with cpu_backend.disabled():
        reference = logits()
    np.testing.assert_allclose(unpadded, reference, atol=1e-5)


def test_training_leaves_out_the_padding_with_the_padded_batchs_dropout(tiny, monkeypatch):
    """In training with output_rows, every layer but the attention's products runs on the real rows, and dropout
    draws by padded position: the outputs at the rows and every gradient are the padded batch's (output_rows None,
    every position computed), dropout included, from the same seed."""
    config = tiny[1](hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.0)
    model = modeling.VisualBertModel(config)
    model.train()
    inputs = _tensors("VisualBertModel", config, batch_size=4, seed=6)
    real = np.concatenate([inputs["attention_mask"].numpy(), inputs["visual_attention_mask"].numpy()], axis=1) == 1
    assert not real.all()
    rows = paddle.to_tensor([[0, 1], [0, 2], [0, 1], [0, 3]], dtype="int64")
    grad_rows = paddle.to_tensor(np.random.default_rng(1).normal(size=(4, 2, config.hidden_size)).astype("float32"))
    split = []
    split_heads = kernels.split_heads
    monkeypatch.setattr(kernels, "split_heads", lambda x, *a, **kw: split.append(x.ndim) or split_heads(x, *a, **kw))

    def step(output_rows):
        model.clear_gradients()
        paddle.seed(9)
        out = model(**inputs, output_rows=output_rows, return_dict=True)
        hidden = out.last_hidden_state if output_rows is not None else modeling.take_rows(out.last_hidden_state, rows)
        ((hidden * grad_rows).sum() + out.pooler_output.sum()).backward()
        return hidden.numpy(), {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}

    unpadded = step(rows)
    layers_count = config.num_hidden_layers
    assert split == [2, 2, 2] * (layers_count - 1) + [
        3,
        2,
        2,
    ]  # the real rows [N, H]; the last layer's queries [B, R, H]
    split.clear()
    padded = step(None)
    assert split == [3] * 3 * layers_count
    np.testing.assert_allclose(unpadded[0], padded[0], rtol=1e-5, atol=1e-5)
    assert unpadded[1].keys() == padded[1].keys() and len(padded[1]) > 10
    for name, grad in padded[1].items():
        if name.endswith("key.bias"):  # 0 in exact arithmetic (softmax ignores a shift shared by all keys)
            assert np.abs(unpadded[1][name]).max() < 1e-5 and np.abs(grad).max() < 1e-5, name
            continue
        atol = max(1e-4 * np.abs(grad).max(), 1e-6)
        np.testing.assert_allclose(unpadded[1][name], grad, rtol=1e-4, atol=atol, err_msg=name)
    paddle.seed(9)
    other = model(**inputs, output_rows=rows, return_dict=True).last_hidden_state.numpy()
    paddle.seed(10)
    assert not np.allclose(other, model(**inputs, output_rows=rows, return_dict=True).last_hidden_state.numpy())


def test_padded_inference_fuses_the_attention(tiny, attention_keys):
    """Without output_rows (the bare model, every position read), inference keeps the padded batch and its mask."""
    model = modeling.VisualBertModel(tiny[1]()).eval()
    inputs = _tensors("VisualBertModel", model.config, seed=5)
    with paddle.no_grad():
        fused = model(**inputs, return_dict=True).last_hidden_state.numpy()
        with cpu_backend.disabled():
            reference = model(**inputs, return_dict=True).last_hidden_state.numpy()
    batch, length = fused.shape[:2]
    assert attention_keys == [[batch, length, model.config.hidden_size]] * model.config.num_hidden_layers
    np.testing.assert_allclose(fused, reference, atol=1e-5)


def test_output_rows_on_padding_or_a_fractional_mask_keep_the_padded_batch(tiny, attention_keys):
    model = modeling.VisualBertModel(tiny[1]()).eval()
    inputs = _tensors("VisualBertModel", model.config, seed=5)
    padding = int(np.argmin(inputs["attention_mask"].numpy()[1]))  # row 1's first padded text position
    real_rows = paddle.to_tensor([[0, 2], [0, 1], [0, 1]], dtype="int64")
    rows = paddle.to_tensor([[0, 2], [0, padding], [0, 1]], dtype="int64")
    fractional = dict(inputs, attention_mask=inputs["attention_mask"].astype("float32") * 0.5)
    layers_count = model.config.num_hidden_layers
    with paddle.no_grad():
        full = model(**inputs, return_dict=True).last_hidden_state.numpy()
        cases = [(inputs, real_rows, True), (inputs, rows, False), (fractional, real_rows, False)]
        for batch, output_rows, unpadded in cases:
            attention_keys.clear()
            part = model(**batch, output_rows=output_rows, return_dict=True).last_hidden_state.numpy()
            assert [len(keys) == 2 for keys in attention_keys] == [unpadded] * layers_count
        np.testing.assert_allclose(
            model(**inputs, output_rows=rows, return_dict=True).last_hidden_state.numpy(),
            np.take_along_axis(full, rows.numpy()[:, :, None], axis=1),
            atol=1e-6,
        )
    assert part.shape[1] == 2


def test_frozen_parameters_get_no_gradient_and_the_rest_the_same(tiny):
    """Freezing part of the model (all biases, the embeddings, one attention block's LayerNorm) is allowed on the
    backend's path, whose autograd functions must then return no gradient for those inputs."""
    config = tiny[1](hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, num_labels=7)
    model = modeling.VisualBertForQuestionAnswering(config)
    frozen = {n for n, _ in model.named_parameters() if n.endswith("bias") or ".embeddings." in n}
    frozen |= {n for n, _ in model.named_parameters() if "layer.0.attention.output.LayerNorm" in n}
    for name, param in model.named_parameters():
        param.stop_gradient = name in frozen
    inputs = _tensors("VisualBertForQuestionAnswering", config, seed=2)
    model.train()

    def grads():
        model.clear_gradients()
        model(**inputs, return_dict=True).loss.backward()
        return {n: None if p.grad is None else p.grad.numpy() for n, p in model.named_parameters()}

    with_backend = grads()
    with cpu_backend.disabled():
        without = grads()
    for name in frozen:
        assert with_backend[name] is None and without[name] is None, name
    assert [n for n, g in with_backend.items() if g is None] == [n for n, g in without.items() if g is None]
    trained = [name for name, grad in without.items() if grad is not None]  # the pooler is unused by this head
    assert len(trained) > 10
    for name in trained:
        expected = without[name]
        atol = max(1e-4 * np.abs(expected).max(), 1e-6)
        np.testing.assert_allclose(with_backend[name], expected, rtol=1e-4, atol=atol, err_msg=name)


@pytest.mark.parametrize("transpose_weight", [False, True])
def test_linear_matches_paddle_linear_with_gradients(rng, transpose_weight):
    """layers.linear (bias gradient by a matrix-vector product) against Paddle's own linear."""
    x_np, w_np = rng.normal(size=(3, 5, 8)).astype("float32"), rng.normal(size=(8, 6)).astype("float32")
    b_np, g_np = rng.normal(size=6).astype("float32"), rng.normal(size=(3, 5, 6)).astype("float32")
    results = []
    for fast in (True, False):
        x, b = paddle.to_tensor(x_np, stop_gradient=False), paddle.to_tensor(b_np, stop_gradient=False)
        w = paddle.to_tensor(w_np.T.copy() if transpose_weight else w_np, stop_gradient=False)
        if fast:
            out = layers.linear(x, w, b, transpose_weight=transpose_weight)
        else:
            out = paddle.nn.functional.linear(x, w.T if transpose_weight else w, b)
        out.backward(paddle.to_tensor(g_np))
        results.append([out.numpy(), x.grad.numpy(), w.grad.numpy(), b.grad.numpy()])
    for fast, reference in zip(*results):
        np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-6)

    frozen = paddle.to_tensor(x_np)  # an input without gradient (visual_embeds) gets none computed
    weight = paddle.to_tensor(w_np, stop_gradient=False)
    layers.linear(frozen, weight, paddle.to_tensor(b_np, stop_gradient=False)).sum().backward()
    assert frozen.grad is None and weight.grad is not None


def test_dropout_is_the_identity_in_eval_and_paddles_op_where_the_kernel_does_not_apply():
    layer = cpu_backend.apply(paddle.nn.Dropout(0.1))
    assert isinstance(layer, layers.Dropout)
    layer.eval()
    x = paddle.ones([4, 4])
    assert layer(x) is x
    layer.train()
    with paddle.no_grad():
        out = layer(paddle.ones([100, 100]))
    assert out.stop_gradient and ((out == 0).numpy().mean() > 0)
    assert cpu_backend.apply(paddle.nn.Dropout(0.1, axis=1)).kernel_rate() is None  # Paddle's op: a rate per axis
    zero = cpu_backend.apply(paddle.nn.Dropout(0.0))
    np.testing.assert_array_equal(zero(x).numpy(), x.numpy())
