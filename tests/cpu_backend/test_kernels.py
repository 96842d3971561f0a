"""The CPU kernels (kernels.cc) against float64 mathematics and Paddle's own operators."""

import math

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddlenlp_ext import runtime
from paddlenlp_ext.cpu_backend import kernels


def _tensor(array, requires_grad=True):
    tensor = paddle.to_tensor(np.asarray(array, dtype="float32"))
    tensor.stop_gradient = not requires_grad
    return tensor


def _close(actual, expected, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(actual.numpy(), expected.numpy(), rtol=rtol, atol=atol)


@pytest.fixture
def threads():
    """Set the kernels' thread count for one test, then put back the previous one."""
    before = runtime.math_threads()
    yield runtime.set_cpu_threads
    runtime.set_cpu_threads(before)


def test_kernels_build_on_this_machine():
    """This machine has a compiler: a failed build must fail the tests, not fall back silently."""
    assert kernels.available()


def test_bias_gelu_against_float64(rng):
    x = np.linspace(-12, 12, 200_001).astype("float32").reshape(-1, 1)
    bias = np.float32(0.25)
    v = (x + bias).astype(np.float64)  # the sum in float32, as the kernel forms it
    cdf = 0.5 * np.vectorize(math.erfc)(-v / math.sqrt(2))
    tensor, bias_tensor = _tensor(x), _tensor([bias])
    out = kernels.bias_gelu(tensor, bias_tensor)
    assert np.abs(out.numpy() - v * cdf).max() < 5e-7  # Paddle's own F.gelu is within 7.2e-7 of it
    grad_x, grad_bias = paddle.grad([out], [tensor, bias_tensor])
    expected = cdf + v * np.exp(-0.5 * v * v) / math.sqrt(2 * math.pi)
    assert np.abs(grad_x.numpy() - expected).max() < 5e-7
    np.testing.assert_allclose(grad_bias.numpy(), [expected.sum()], rtol=1e-4)  # a float32 sum of 200,001 rows
    with paddle.no_grad():
        np.testing.assert_array_equal(kernels.bias_gelu(tensor, bias_tensor).numpy(), out.numpy())


def test_bias_gelu_matches_paddle_on_a_matrix(rng):
    x, bias = _tensor(rng.normal(0, 2, (6, 5, 40))), _tensor(rng.normal(0, 1, 40))
    grad_out = _tensor(rng.normal(size=(6, 5, 40)), requires_grad=False)
    out = kernels.bias_gelu(x, bias)
    expected = F.gelu(x + bias)
    _close(out, expected)
    for grad, wanted in zip(paddle.grad([out], [x, bias], [grad_out]), paddle.grad([expected], [x, bias], [grad_out])):
        _close(grad, wanted, rtol=1e-5, atol=1e-5)


def test_split_heads_is_bias_scale_and_transpose(rng):
    x, bias = _tensor(rng.normal(size=(2, 5, 12))), _tensor(rng.normal(size=12))
    out = kernels.split_heads(x, bias, 3, 0.125)
    expected = ((x + bias) * 0.125).reshape([2, 5, 3, 4]).transpose([0, 2, 1, 3])
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    grad_out = _tensor(rng.normal(size=(2, 3, 5, 4)), requires_grad=False)
    for grad, wanted in zip(paddle.grad([out], [x, bias], [grad_out]), paddle.grad([expected], [x, bias], [grad_out])):
        _close(grad, wanted)


@pytest.mark.parametrize("mask_shape", [(2, 1, 1, 9), (1, 1, 5, 9), (2, 1, 5, 9)])
def test_masked_softmax_matches_paddle(rng, mask_shape):
    scores = _tensor(rng.normal(0, 4, (2, 3, 5, 9)))
    mask = np.where(rng.random(mask_shape) < 0.3, np.finfo("float32").min, 0).astype("float32")
    mask[..., 0] = 0  # every row keeps a key
    mask = _tensor(mask, requires_grad=False)
    grad_out = _tensor(rng.normal(size=(2, 3, 5, 9)), requires_grad=False)
    probs = kernels.masked_softmax(scores, mask)
    expected = F.softmax(scores + mask, axis=-1)
    _close(probs, expected)
    assert (probs.numpy()[np.broadcast_to(mask.numpy() < 0, probs.shape)] == 0).all()  # masked keys: exactly 0
    _close(paddle.grad([probs], [scores], [grad_out])[0], paddle.grad([expected], [scores], [grad_out])[0])


def test_kernels_take_strided_views(rng):
    """A transpose is a strided view in Paddle; the custom-operator call makes it dense before the kernel reads it,
    for the forward's inputs and for the gradient handed to a backward alike."""
    scores = _tensor(rng.normal(size=(2, 3, 9, 5))).transpose([0, 1, 3, 2])
    assert not scores.is_contiguous()
    mask = _tensor(np.zeros((2, 1, 1, 9)), requires_grad=False)
    grad_out = _tensor(rng.normal(size=(2, 3, 9, 5)), requires_grad=False).transpose([0, 1, 3, 2])
    probs = kernels.masked_softmax(scores, mask)
    expected = F.softmax(scores, axis=-1)
    _close(probs, expected)
    _close(paddle.grad([probs], [scores], [grad_out])[0], paddle.grad([expected], [scores], [grad_out])[0])


def test_masked_softmax_refuses_a_mask_it_cannot_broadcast():
    with pytest.raises(Exception, match=r"\[B or 1, 1, Q or 1, K\]"):
        kernels.masked_softmax(paddle.zeros([2, 3, 5, 9]), paddle.zeros([2, 3, 5, 9]))


@pytest.mark.parametrize("shape", [(4, 7, 32), (3, 768)])
def test_layer_norm_matches_paddle(rng, shape):
    size = shape[-1]
    weight, bias = _tensor(rng.normal(1.0, 0.5, size)), _tensor(rng.normal(0.0, 0.5, size))
    array = rng.normal(0.3, 2.0, shape)
    array[(0,) * (len(shape) - 1)] = 2.5  # a constant row: variance 0, 1/std = 1/sqrt(eps) as in Paddle
    x = _tensor(array)
    grad_out = _tensor(rng.normal(size=shape), requires_grad=False)
    params = [x, weight, bias]
    out = kernels.layer_norm(x, weight, bias, 1e-12)
    expected = F.layer_norm(x, size, weight, bias, 1e-12)
    _close(out, expected, atol=1e-5)
    for grad, expected_grad in zip(
        paddle.grad([out], params, [grad_out]), paddle.grad([expected], params, [grad_out])
    ):
        _close(grad, expected_grad, rtol=1e-4, atol=1e-4 * float(expected_grad.abs().max()))


def test_layer_norm_with_a_frozen_input_and_without_gradients(rng):
    weight, bias = _tensor(rng.normal(1.0, 0.5, 16)), _tensor(rng.normal(0.0, 0.5, 16))
    x = _tensor(rng.normal(size=(3, 16)), requires_grad=False)  # only the parameters need gradients
    grad_out = _tensor(rng.normal(size=(3, 16)), requires_grad=False)
    out = kernels.layer_norm(x, weight, bias, 1e-5)
    expected = F.layer_norm(x, 16, weight, bias, 1e-5)
    grads = paddle.grad([out], [weight, bias], [grad_out])
    for grad, expected_grad in zip(grads, paddle.grad([expected], [weight, bias], [grad_out])):
        _close(grad, expected_grad, rtol=1e-4, atol=1e-5)
    with paddle.no_grad():
        plain = kernels.layer_norm(x, weight, bias, 1e-5)
    assert plain.stop_gradient
    np.testing.assert_array_equal(plain.numpy(), out.numpy())


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_bias_dropout_add_norm_is_the_composition(rng, p):
    """The same seed gives the same mask as the dropout kernel: the fused block equals dropout, add, LayerNorm."""
    shape = (3, 7, 32)
    x, bias, residual = _tensor(rng.normal(size=shape)), _tensor(rng.normal(size=32)), _tensor(rng.normal(size=shape))
    weight, norm_bias = _tensor(rng.normal(1.0, 0.5, 32)), _tensor(rng.normal(0.0, 0.5, 32))
    grad_out = _tensor(rng.normal(size=shape), requires_grad=False)
    params = [x, bias, residual, weight, norm_bias]
    paddle.seed(5)
    fused = kernels.bias_dropout_add_norm(x, bias, residual, weight, norm_bias, 1e-12, p)
    paddle.seed(5)
    dropped = kernels.dropout(x + bias, p) if p else x + bias
    expected = F.layer_norm(dropped + residual, 32, weight, norm_bias, 1e-12)
    _close(fused, expected, atol=1e-5)
    for grad, wanted in zip(paddle.grad([fused], params, [grad_out]), paddle.grad([expected], params, [grad_out])):
        _close(grad, wanted, rtol=1e-4, atol=1e-4 * float(wanted.abs().max()))
    with paddle.no_grad():  # nothing kept for a backward: the same output
        paddle.seed(5)
        plain = kernels.bias_dropout_add_norm(x, bias, residual, weight, norm_bias, 1e-12, p)
    np.testing.assert_array_equal(plain.numpy(), fused.numpy())


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_rate_and_scale(p):
    paddle.seed(0)
    n = 1_000_000
    values = kernels.dropout(paddle.ones([n]), p).numpy()
    kept = values != 0
    np.testing.assert_allclose(values[kept], 1 / (1 - p), rtol=1e-6)
    assert abs((1 - kept.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)  # 5 standard deviations
    assert abs(values.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)  # the expectation is kept
    # neighbouring elements are independent: P(both dropped) = p^2
    both = (~kept[:-1] & ~kept[1:]).mean()
    assert abs(both - p * p) < 5 * np.sqrt(p * p * (1 - p * p) / n)


def test_dropout_backward_uses_the_forward_mask(rng):
    x = _tensor(rng.normal(size=(4, 6, 32)))
    out = kernels.dropout(x, 0.3)
    grad_out = _tensor(rng.normal(size=(4, 6, 32)), requires_grad=False)
    grad = paddle.grad([out], [x], [grad_out])[0]
    _close(grad, grad_out * (out / x), rtol=1e-6, atol=0)


def test_dropout_seeded_by_paddle_fresh_per_call_and_the_same_on_any_thread_count(threads):
    x = paddle.ones([8, 12, 20, 20])
    paddle.seed(123)
    first, second = kernels.dropout(x, 0.1).numpy(), kernels.dropout(x, 0.1).numpy()
    assert (first != second).any()
    paddle.seed(123)
    np.testing.assert_array_equal(kernels.dropout(x, 0.1).numpy(), first)
    state = paddle.get_rng_state()
    third = kernels.dropout(x, 0.1).numpy()
    paddle.set_rng_state(state)
    np.testing.assert_array_equal(kernels.dropout(x, 0.1).numpy(), third)
    for count in (1, 2, 3):
        threads(count)
        paddle.seed(123)
        np.testing.assert_array_equal(kernels.dropout(x, 0.1).numpy(), first)


def test_dropout_matmul_equals_dropout_then_matmul(rng):
    probs = _tensor(rng.random((2, 3, 5, 5)))
    value = _tensor(rng.normal(size=(2, 3, 5, 4)))
    paddle.seed(7)
    fused = kernels.dropout_matmul(probs, value, 0.3)
    grads = paddle.grad([fused.sum() + (fused * fused).sum()], [probs, value])
    paddle.seed(7)
    dropped = kernels.dropout(probs, 0.3)
    plain = paddle.matmul(dropped, value)
    expected = paddle.grad([plain.sum() + (plain * plain).sum()], [probs, value])
    assert 0 < float((dropped == 0).astype("float32").mean()) < 1  # some dropped, some kept
    _close(fused, plain)
    for actual, wanted in zip(grads, expected):
        _close(actual, wanted)


def test_merge_heads_is_a_transpose_and_split_heads_its_gradient(rng):
    x = _tensor(rng.normal(size=(2, 3, 5, 4)))
    out = kernels.merge_heads(x)  # the attention context back to [B, S, heads * head_size]
    np.testing.assert_array_equal(out.numpy(), x.numpy().transpose(0, 2, 1, 3).reshape(2, 5, 12))
    grad_out = rng.normal(size=(2, 5, 12)).astype("float32")
    grad = paddle.grad([out], [x], [paddle.to_tensor(grad_out)])[0]
    np.testing.assert_array_equal(grad.numpy(), grad_out.reshape(2, 5, 3, 4).transpose(0, 2, 1, 3))


def _real_positions(rng, batch, length):
    real = rng.random((batch, length)) < 0.6
    real[:, 0] = True
    real[-1] = False  # a sequence of one row
    real[-1, 0] = True
    return real


def test_a_row_layout_places_the_real_rows_of_a_padded_batch(rng):
    """RowLayout: each real row's padded position, each position's row (-1 at padding); split_heads and merge_heads
    through it are the padded batch's layout with zeros at padding, and their gradients the real rows' only."""
    real = _real_positions(rng, 3, 6)
    layout = kernels.RowLayout.of(paddle.to_tensor(real))
    positions = np.flatnonzero(real)
    np.testing.assert_array_equal(layout.positions.numpy(), positions)
    slots = np.full(real.size, -1)
    slots[positions] = np.arange(len(positions))
    np.testing.assert_array_equal(layout.slots.numpy(), slots)
    assert layout.length == 6

    rows, bias = _tensor(rng.normal(size=(len(positions), 12))), _tensor(rng.normal(size=12))
    out = kernels.split_heads(rows, bias, 3, 0.5, layout)
    padded = paddle.scatter(paddle.zeros([real.size, 12]), layout.positions, (rows + bias) * 0.5)
    expected = padded.reshape([3, 6, 3, 4]).transpose([0, 2, 1, 3])
    np.testing.assert_array_equal(out.numpy(), expected.numpy())
    grad_out = _tensor(rng.normal(size=(3, 3, 6, 4)), requires_grad=False)
    for grad, wanted in zip(
        paddle.grad([out], [rows, bias], [grad_out]), paddle.grad([expected], [rows, bias], [grad_out])
    ):
        _close(grad, wanted)

    context = _tensor(rng.normal(size=(3, 3, 6, 4)))
    merged = kernels.merge_heads(context, layout)
    expected = context.transpose([0, 2, 1, 3]).reshape([-1, 12]).gather(layout.positions)
    np.testing.assert_array_equal(merged.numpy(), expected.numpy())
    grad_out = _tensor(rng.normal(size=(len(positions), 12)), requires_grad=False)
    grad, wanted = paddle.grad([merged], [context], [grad_out])[0], paddle.grad([expected], [context], [grad_out])[0]
    np.testing.assert_array_equal(grad.numpy(), wanted.numpy())


def test_bias_dropout_add_norm_on_the_real_rows_draws_the_padded_batchs_mask(rng):
    """With positions, the fused block on the real rows of a padded batch equals the padded batch's at those rows,
    dropout included (the same seed)."""
    real = _real_positions(rng, 4, 9)
    layout = kernels.RowLayout.of(paddle.to_tensor(real))
    x, residual = rng.normal(size=(4, 9, 32)), rng.normal(size=(4, 9, 32))
    bias, weight, norm_bias = rng.normal(size=32), rng.normal(1.0, 0.5, 32), rng.normal(0.0, 0.5, 32)
    outputs = []
    for x_, residual_ in ((x, residual), (x[real], residual[real])):
        paddle.seed(11)
        args = [_tensor(a, requires_grad=False) for a in (x_, bias, residual_, weight, norm_bias)]
        positions = None if x_.ndim == 3 else layout.positions
        outputs.append(kernels.bias_dropout_add_norm(*args, 1e-12, 0.4, positions).numpy())
    padded, unpadded = outputs
    np.testing.assert_array_equal(unpadded, padded[real])
    paddle.seed(11)
    args = [_tensor(a, requires_grad=False) for a in (x[real], bias, residual[real], weight, norm_bias)]
    assert not np.array_equal(kernels.bias_dropout_add_norm(*args, 1e-12, 0.4).numpy(), unpadded)  # rows' own mask


def _attention_float64(q, k, v, biases, heads, scale, mask=None):
    """The attention of one padded batch [B, Q, H] / [B, K, H] in float64 numpy, head by head."""
    depth = q.shape[-1] // heads

    def split(x, bias, factor=1.0):  # [B, S, H] -> [B, heads, S, D]
        x = (x.astype(np.float64) + bias) * factor
        return x.reshape(x.shape[0], x.shape[1], heads, depth).transpose(0, 2, 1, 3)

    scores = split(q, biases[0], scale) @ split(k, biases[1]).transpose(0, 1, 3, 2)
    if mask is not None:
        scores = scores + mask
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    context = probs @ split(v, biases[2])
    return context.transpose(0, 2, 1, 3).reshape(q.shape)


def test_this_machine_builds_the_mkl_kernels():
    """Paddle's x86 wheels ship MKL: the fused attention must be built here, not left out silently."""
    assert kernels.mkl_available()


@pytest.mark.parametrize("mask_shape", [(3, 1, 1, 11), (1, 1, 6, 11), (3, 1, 6, 11)])
def test_attention_of_a_padded_batch(rng, mask_shape):
    heads, hidden = 4, 32
    q, k, v = rng.normal(size=(3, 6, hidden)), rng.normal(size=(3, 11, hidden)), rng.normal(size=(3, 11, hidden))
    biases = [rng.normal(size=hidden) for _ in range(3)]
    mask = np.where(rng.random(mask_shape) < 0.3, np.finfo("float32").min, 0).astype("float32")
    mask[..., 0] = 0
    tensors = [_tensor(x, requires_grad=False) for x in (q, k, v, *biases)]
    with paddle.no_grad():
        out = kernels.attention(*tensors, heads, 0.25, mask=_tensor(mask, requires_grad=False))
        # the unfused kernels, as the training path composes them
        split = [kernels.split_heads(x, b, heads, f) for x, b, f in zip(tensors[:3], tensors[3:], (0.25, 1, 1))]
        probs = kernels.masked_softmax(paddle.matmul(split[0], split[1], transpose_y=True), _tensor(mask))
        unfused = kernels.merge_heads(paddle.matmul(probs, split[2]))
    np.testing.assert_allclose(out.numpy(), _attention_float64(q, k, v, biases, heads, 0.25, mask), atol=2e-6)
    np.testing.assert_allclose(out.numpy(), unfused.numpy(), atol=1e-6)


def test_attention_of_sequences_without_padding(rng):
    """Sequences of 5, 1, 0 and 7 rows one after the other; the queries are every row, or two rows per sequence."""
    heads, hidden, lengths = 2, 16, [5, 1, 0, 7]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    k, v = rng.normal(size=(starts[-1], hidden)), rng.normal(size=(starts[-1], hidden))
    biases = [rng.normal(size=hidden) for _ in range(3)]
    for queries_per_sequence in (None, 2):
        counts = lengths if queries_per_sequence is None else [queries_per_sequence] * len(lengths)
        counts[2] = 0  # the empty sequence asks nothing
        q_starts = np.concatenate([[0], np.cumsum(counts)])
        q = rng.normal(size=(q_starts[-1], hidden))
        offsets = (paddle.to_tensor(q_starts, dtype="int64"), paddle.to_tensor(starts, dtype="int64"))
        with paddle.no_grad():
            out = kernels.attention(
                *[_tensor(x, requires_grad=False) for x in (q, k, v, *biases)], heads, 0.5, offsets=offsets
            ).numpy()
        assert out.shape == q.shape
        for b in range(len(lengths)):
            if counts[b]:
                qs, ks = slice(q_starts[b], q_starts[b + 1]), slice(starts[b], starts[b + 1])
                expected = _attention_float64(q[None, qs], k[None, ks], v[None, ks], biases, heads, 0.5)[0]
                np.testing.assert_allclose(out[qs], expected, atol=2e-6, err_msg=f"sequence {b}")


def test_attention_refuses_offsets_that_do_not_fit():
    x, bias = paddle.zeros([6, 8]), paddle.zeros([8])
    starts = paddle.to_tensor([0, 2, 5], dtype="int64")  # covers 5 of the 6 rows
    with pytest.raises(Exception, match="offsets must cover the query and key rows"):
        kernels.attention(x, x, x, bias, bias, bias, 2, 1.0, offsets=(starts, starts))
    halves, no_keys = paddle.to_tensor([0, 3, 6], dtype="int64"), paddle.to_tensor([0, 6, 6], dtype="int64")
    with pytest.raises(Exception, match="queries must have keys"):
        kernels.attention(x, x, x, bias, bias, bias, 2, 1.0, offsets=(halves, no_keys))
    uneven = paddle.to_tensor([0, 2, 6], dtype="int64")
    with pytest.raises(Exception, match="one length"):
        kernels.attention(x, x, x, bias, bias, bias, 2, 1.0, mask=paddle.zeros([2, 1, 1, 3]), offsets=(uneven, uneven))


def test_a_failed_build_warns_and_leaves_paddles_operators(tmp_path, monkeypatch):
    broken = tmp_path / "broken.cc"
    broken.write_text("this is not C++\n")
    monkeypatch.setenv("VISUALBERT_KERNEL_CACHE", str(tmp_path / "cache"))
    with pytest.warns(UserWarning, match=r"could not be built .*log: .*build\.log"):
        assert kernels.build(str(broken)) is None
