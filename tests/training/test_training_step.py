"""The trainer's step (TrainingStep): clipping as Paddle's ClipGradByGlobalNorm clips, one norm for clipping and the
divergence check, gradients released after the optimizer step."""

import alignment as compare
import numpy as np
import paddle
import pytest

from paddlenlp_ext.training.args import base_parser
from paddlenlp_ext.training.trainer import TrainingStep
from paddlenlp_ext.transformers.visualbert import modeling
from paddlenlp_ext.transformers.visualbert.configuration import VisualBertConfig

ARCHITECTURE = "VisualBertForVisualReasoning"


def model_and_inputs():
    paddle.seed(0)
    config = VisualBertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                              vocab_size=99, visual_embedding_dim=16, num_labels=2)  # fmt: skip
    model = getattr(modeling, ARCHITECTURE)(config)
    return model, {k: paddle.to_tensor(v) for k, v in compare.make_inputs(ARCHITECTURE, config, seed=3).items()}


def training_step(model, *flags):
    args = base_parser("test").parse_args(["--output_dir", "unused", "--device", "cpu", *flags])
    return TrainingStep(args, model, total_steps=10)


@pytest.mark.parametrize("max_grad_norm", [1e-3, 1e3])  # clipped, and left as it is
def test_clipping_is_paddles_global_norm_clipping(max_grad_norm):
    model, inputs = model_and_inputs()
    steps = training_step(model, "--max_grad_norm", str(max_grad_norm))
    steps.forward_backward(inputs)
    params = [p for p in model.parameters() if p.grad is not None]
    grads = [p.grad.numpy() for p in params]
    expected = paddle.nn.ClipGradByGlobalNorm(max_grad_norm)([(p, paddle.to_tensor(g)) for p, g in zip(params, grads)])
    norm = steps.clip_gradients()
    assert norm == pytest.approx(np.sqrt(sum((g.astype("float64") ** 2).sum() for g in grads)), rel=1e-5)
    assert (norm > max_grad_norm) == (max_grad_norm == 1e-3)
    for p, (_, clipped) in zip(params, expected):
        np.testing.assert_allclose(p.grad.numpy(), clipped.numpy(), rtol=1e-6, atol=1e-12)


def test_a_non_finite_norm_is_returned_and_nothing_is_scaled():
    model, inputs = model_and_inputs()
    steps = training_step(model)
    steps.forward_backward(inputs)
    target = next(p for p in model.parameters() if p.grad is not None)
    target.grad.set_value(paddle.full_like(target.grad, float("nan")))
    other = [p for p in model.parameters() if p.grad is not None][-1]
    before = other.grad.numpy()
    assert np.isnan(steps.clip_gradients())
    np.testing.assert_array_equal(other.grad.numpy(), before)


def test_the_step_updates_the_weights_and_releases_the_gradients():
    model, inputs = model_and_inputs()
    model.eval()  # no dropout: the two losses below differ by the step alone
    steps = training_step(model, "--learning_rate", "1e-3", "--warmup_proportion", "0")
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    first = steps.forward_backward(inputs)
    steps.clip_gradients()
    steps.step()
    assert all(p.grad is None for p in model.parameters())  # released, not zeroed
    changed = [n for n, p in model.named_parameters() if not np.array_equal(p.numpy(), before[n])]
    assert "cls.weight" in changed and "visual_bert.embeddings.word_embeddings.weight" in changed
    assert steps.forward_backward(inputs) < first  # the same batch again: the step went downhill
