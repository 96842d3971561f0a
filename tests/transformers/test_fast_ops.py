"""The CPU operators of modeling.py against Paddle's own: same forward, same gradients within fp32 rounding."""

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F
import pytest

from paddlenlp_ext.transformers.visualbert import modeling


def _tensor(array, requires_grad=True):
    tensor = paddle.to_tensor(array, dtype="float32")
    tensor.stop_gradient = not requires_grad
    return tensor


def _close(actual, expected, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("shape", [(4, 7, 32), (3, 768), (2, 5, 3, 64)])
def test_layer_norm_matches_paddle(rng, shape):
    size = shape[-1]
    layer = modeling._LayerNorm(size, epsilon=1e-12)
    layer.weight.set_value(rng.normal(1.0, 0.5, size).astype("float32"))
    layer.bias.set_value(rng.normal(0.0, 0.5, size).astype("float32"))
    x = _tensor(rng.normal(0.3, 2.0, shape))
    grad_out = _tensor(rng.normal(size=shape), requires_grad=False)
    params = [x, layer.weight, layer.bias]

    out = layer(x)
    grads = paddle.grad([out], params, [grad_out])
    expected = F.layer_norm(x, size, layer.weight, layer.bias, 1e-12)
    expected_grads = paddle.grad([expected], params, [grad_out])

    _close(out, expected)
    for grad, expected_grad in zip(grads, expected_grads):
        _close(grad, expected_grad, rtol=1e-4, atol=1e-4 * float(expected_grad.abs().max()))


def test_layer_norm_constant_rows_and_frozen_input(rng):
    """A constant row has variance 0: 1/std is 1/sqrt(eps), as in Paddle's layer_norm."""
    layer = modeling._LayerNorm(16, epsilon=1e-5)
    layer.weight.set_value(rng.normal(1.0, 0.5, 16).astype("float32"))
    array = rng.normal(size=(3, 16)).astype("float32")
    array[1] = 2.5
    x = _tensor(array, requires_grad=False)  # only the parameters need gradients
    grad_out = _tensor(rng.normal(size=(3, 16)), requires_grad=False)
    grads = paddle.grad([layer(x)], [layer.weight, layer.bias], [grad_out])
    expected = paddle.grad([nn.LayerNorm.forward(layer, x)], [layer.weight, layer.bias], [grad_out])
    for grad, expected_grad in zip(grads, expected):
        _close(grad, expected_grad, rtol=1e-4, atol=1e-4)

    x = _tensor(array)
    params = [x, layer.weight, layer.bias]  # like _LinearFunction's, the PyLayer's gradients are asked for together
    grad_x = paddle.grad([layer(x)], params, [grad_out])[0]
    expected_x = paddle.grad([nn.LayerNorm.forward(layer, x)], params, [grad_out])[0]
    _close(grad_x, expected_x, rtol=1e-3, atol=1e-3 * float(expected_x.abs().max()))


def test_layer_norm_without_gradients_keeps_paddles_forward(rng):
    layer = modeling._LayerNorm(8)
    x = _tensor(rng.normal(size=(2, 8)))
    with paddle.no_grad():
        out = layer(x)
    assert out.stop_gradient
    np.testing.assert_array_equal(out.numpy(), nn.LayerNorm.forward(layer, x).numpy())


def _train_dropout(p):
    layer = modeling._Dropout(p)
    layer.train()
    return layer


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_rate_and_scale(p):
    paddle.seed(0)
    n = 1_000_001  # odd: one 32-bit draw gives two elements
    out = _train_dropout(p)(paddle.ones([n]))
    values = out.numpy()
    quantised = round(p * 65536) / 65536
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / (1 - quantised), rtol=1e-6)
    rate = 1 - kept.mean()
    assert abs(rate - quantised) < 5 * np.sqrt(p * (1 - p) / n)  # 5 standard deviations
    assert abs(values.mean() - 1) < 5 * np.sqrt(quantised / (1 - quantised) / n)  # the expectation is kept


def test_dropout_backward_uses_the_forward_mask(rng):
    x = _tensor(rng.normal(size=(4, 6, 32)))
    out = _train_dropout(0.3)(x)
    grad_out = _tensor(rng.normal(size=(4, 6, 32)), requires_grad=False)
    grad = paddle.grad([out], [x], [grad_out])[0]
    mask = out / x
    _close(grad, grad_out * mask, rtol=1e-6, atol=0)


def test_dropout_matmul_equals_dropout_then_matmul(rng):
    probs = _tensor(rng.random((2, 3, 5, 5)))
    value = _tensor(rng.normal(size=(2, 3, 5, 4)))
    dropout = _train_dropout(0.3)
    paddle.seed(7)
    fused = dropout.matmul(probs, value)
    grads = paddle.grad([fused.sum() + (fused * fused).sum()], [probs, value])
    paddle.seed(7)
    plain = paddle.matmul(dropout(probs), value)
    expected = paddle.grad([plain.sum() + (plain * plain).sum()], [probs, value])
    assert 0 < float((dropout(probs) == 0).astype("float32").mean()) < 1  # some dropped, some kept
    _close(fused, plain, rtol=1e-6, atol=1e-6)
    for actual, wanted in zip(grads, expected):
        _close(actual, wanted, rtol=1e-5, atol=1e-6)


def test_dropout_seeded_by_paddle_and_fresh_per_call():
    layer = _train_dropout(0.1)
    x = paddle.ones([8, 12, 20, 20])
    paddle.seed(123)
    first, second = layer(x).numpy(), layer(x).numpy()
    paddle.seed(123)
    np.testing.assert_array_equal(layer(x).numpy(), first)
    state = paddle.get_rng_state()
    third = layer(x).numpy()
    paddle.set_rng_state(state)
    np.testing.assert_array_equal(layer(x).numpy(), third)
    assert (first != second).any()


def test_dropout_identity_in_eval_and_paddles_op_elsewhere():
    layer = modeling._Dropout(0.1)
    layer.eval()
    x = paddle.ones([4, 4])
    assert layer(x) is x
    layer.train()
    with paddle.no_grad():
        out = layer(paddle.ones([100, 100]))
    assert out.stop_gradient and ((out == 0).numpy().mean() > 0)
    np.testing.assert_array_equal(_train_dropout(0.0)(x).numpy(), x.numpy())  # p = 0: Paddle's op, the identity


def test_soft_target_loss_matches_log_softmax(rng):
    logits = _tensor(rng.normal(0, 3, (8, 50)))
    labels = paddle.to_tensor(rng.random((8, 50)).astype("float32"))
    loss, log_probs = modeling._soft_target_loss(logits, labels)
    expected_log_probs = F.log_softmax(logits, axis=-1)
    expected = F.kl_div(expected_log_probs, labels, reduction="batchmean")
    _close(log_probs, expected_log_probs)
    _close(loss, expected)
    _close(paddle.grad([loss], [logits])[0], paddle.grad([expected], [logits])[0], rtol=1e-5, atol=1e-6)
