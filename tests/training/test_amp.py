"""--use_amp on CPU: what Paddle does there, and the closest run of a GPU AMP step that it allows.

Paddle 3.3.1 on CPU (pinned by test_paddle_mixed_precision_is_a_no_op_on_cpu): `paddle.amp.auto_cast`, O1 or O2,
bfloat16 or float16, custom white list or not, warns and does nothing: outputs stay fp32 and
`paddle.amp.is_autocast_enabled()` is False inside it. `paddle.amp.decorate(level="O2")` leaves the parameters fp32;
`GradScaler` disables itself. Autocast cannot be forced on: the casts are decided per tensor in C++, for GPU, XPU and
custom-device tensors only. Nor can the model be cast down instead: there is no bfloat16 or float16 CPU kernel for
matmul, layer_norm, softmax, gelu, tanh, add, where, take_along_axis, logsumexp, cross_entropy or kl_div, forward or
backward (of the model's operators only embedding, dropout, scale, concat, reshape and transpose have both; bfloat16
matmul, softmax and gelu exist as oneDNN kernels, which eager mode does not pick). No layer of the model can run in
bfloat16 or float16 on CPU.

What runs instead, for every head, with the CPU backend off (modeling.py's path, the one a GPU runs):

- O1's numerics at its white list (`o1_rounding`). On a GPU, O1 runs the white-list operators (paddle.amp.amp_lists:
  matmul, and linear_v2, what nn.Linear calls on a CUDA build) on low-precision inputs, accumulating in fp32, and
  returns low-precision outputs; the black list (layer_norm, softmax, cross_entropy, ...) runs in fp32. Here every
  F.linear and paddle.matmul call rounds its inputs and its output to the dtype with Paddle's cast (round to nearest,
  float16 overflowing to inf and underflowing to 0) and computes in fp32 between. Gradients flow back through the
  same casts, so they are rounded at the same places. Parameters, gradients and the optimizer stay fp32, as in O1.
  Covered: a training step (forward, backward, AdamW) of every head, prediction (eval, no gradient), and the
  trainer's own --use_amp step (its autocast, and for float16 its GradScaler calls).
  Not covered: the roundings of the operators that O1 runs in low precision after a cast one (gelu, tanh, dropout,
  the queries' scale, and for VQA and region-to-phrase the loss itself: logsumexp and kl_div are on neither list),
  the dtypes themselves (every tensor here is fp32), O2, GPU kernels, and loss scaling (GradScaler is off on CPU:
  its calls run, no step is scaled or skipped).
- Every tensor in one other dtype (test_the_model_computes_in_its_parameters_dtype): float64, the one dtype besides
  fp32 that every CPU kernel has. It runs the code that picks a dtype (the masks, the dtype's minimum, the soft
  labels' cast) with activations that are not fp32, as pure low precision (O2) has them.

Tolerance: a rounding to a dtype of unit roundoff u (2**-8 bfloat16, 2**-11 float16) moves a value by at most u of
it. The n roundings of a forward pass (about 80 here, counted) move the loss like a random walk, by about sqrt(n) u
of its scale; `tolerance` allows 4 sqrt(n) u of max(|fp32 value|, 1) (1: a loss near 0 has no relative error to speak
of). Overflow and NaN are caught apart: every loss, output and gradient must be finite.
"""

import contextlib
import os

import alignment as compare
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddlenlp_ext import cpu_backend
from paddlenlp_ext.training import checkpoint
from paddlenlp_ext.training import trainer as trainer_module
from paddlenlp_ext.transformers.visualbert import convert, modeling

HEADS = [name for name in convert.HEAD_CLASSES if name != "VisualBertModel"]
DTYPES = ["bfloat16", "float16"]
UNIT_ROUNDOFF = {"bfloat16": 2.0**-8, "float16": 2.0**-11}


class Rounding:
    """Rounds fp32 tensors to `dtype` and back, and counts what it rounded (so a test sees that it acted)."""

    def __init__(self, dtype: str):
        self.dtype, self.calls, self.dtypes = dtype, 0, set()

    def __call__(self, tensor):
        low = tensor.astype(self.dtype)
        self.calls += 1
        self.dtypes.add(low.dtype)
        return low.astype(tensor.dtype)


@contextlib.contextmanager
def o1_rounding(dtype: str):
    """Inside, F.linear and paddle.matmul (O1's white list, as modeling.py calls it) round their inputs and output to
    `dtype`; yields the Rounding, to count what it did."""
    rounding, linear, matmul = Rounding(dtype), F.linear, paddle.matmul

    def rounded_linear(x, weight, bias=None, name=None):
        return rounding(linear(rounding(x), rounding(weight), None if bias is None else rounding(bias)))

    def rounded_matmul(x, y, transpose_x=False, transpose_y=False, name=None):
        return rounding(matmul(rounding(x), rounding(y), transpose_x, transpose_y))

    F.linear, paddle.matmul = rounded_linear, rounded_matmul
    try:
        yield rounding
    finally:
        F.linear, paddle.matmul = linear, matmul


@pytest.fixture(autouse=True)
def backend_off():
    """modeling.py's path. The fused CPU blocks would not call the rounded operators, and they do not step aside
    under auto_cast on CPU: paddle.amp.is_autocast_enabled() is False there."""
    with cpu_backend.disabled():
        yield


def build(architecture, tiny, seed=0):
    paddle.seed(seed)
    model = getattr(modeling, architecture)(tiny[1](num_labels=10))
    inputs = {k: paddle.to_tensor(v) for k, v in compare.make_inputs(architecture, model.config, seed=seed).items()}
    return model, inputs


def tolerance(rounding, reference: float) -> float:
    """4 sqrt(n) u of max(|reference|, 1) for n roundings to a dtype of unit roundoff u (see the module docstring)."""
    return 4 * np.sqrt(rounding.calls) * UNIT_ROUNDOFF[rounding.dtype] * max(abs(reference), 1.0)


def rms(values) -> float:
    return float(np.sqrt(np.mean(np.square(values, dtype="float64"))))


@pytest.mark.parametrize("dtype", DTYPES)
def test_paddle_mixed_precision_is_a_no_op_on_cpu(dtype):
    """What the rest of this file stands in for. If this fails, Paddle casts on CPU now: run the tests below under
    paddle.amp.auto_cast itself (and assert low-precision outputs and fp32 parameters)."""
    linear = paddle.nn.Linear(8, 8)
    x = paddle.randn([2, 8])
    for level in ("O1", "O2"):
        with paddle.amp.auto_cast(dtype=dtype, level=level, custom_white_list={"linear", "matmul", "add"}):
            assert not paddle.amp.is_autocast_enabled()
            assert linear(x).dtype == paddle.float32 and paddle.matmul(x, x, transpose_y=True).dtype == paddle.float32
    optimizer = paddle.optimizer.AdamW(parameters=linear.parameters())
    linear, optimizer = paddle.amp.decorate(linear, optimizer, level="O2", dtype=dtype)
    assert all(p.dtype == paddle.float32 for p in linear.parameters())
    assert not paddle.amp.GradScaler().is_enable()
    low = x.astype(dtype)
    operators = {
        "matmul": lambda: paddle.matmul(low, low, transpose_y=True),
        "layer_norm": lambda: F.layer_norm(low, 8),
        "softmax": lambda: F.softmax(low),
        "gelu": lambda: F.gelu(low),
    }
    for name, call in operators.items():
        with pytest.raises(Exception, match=f"kernel `{name}` is not registered"):
            call()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("architecture", HEADS)
def test_a_training_step_under_o1_stays_close_to_fp32(tiny, architecture, dtype):
    """Forward, backward and an AdamW step, with dropout on (the same masks as the fp32 pass: the same seed)."""
    model, inputs = build(architecture, tiny)
    model.train()
    optimizer = paddle.optimizer.AdamW(learning_rate=1e-3, parameters=model.parameters())
    with paddle.no_grad():
        paddle.seed(1)
        reference = float(model(**inputs, return_dict=True).loss)
    before = {n: p.numpy() for n, p in model.named_parameters()}

    paddle.seed(1)
    with paddle.amp.auto_cast(dtype=dtype), o1_rounding(dtype) as rounding:
        loss = model(**inputs, return_dict=True).loss
    loss.backward()

    assert rounding.calls > 0 and rounding.dtypes == {getattr(paddle, dtype)}
    assert np.isfinite(float(loss)) and float(loss) != reference  # the rounding changed the numbers
    assert abs(float(loss) - reference) <= tolerance(rounding, reference), (float(loss), reference)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads and all(g.dtype == paddle.float32 and bool(paddle.isfinite(g).all()) for g in grads.values())
    optimizer.step()
    for name, p in model.named_parameters():
        assert p.dtype == paddle.float32 and np.isfinite(p.numpy()).all(), name
    assert any(not np.array_equal(p.numpy(), before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("architecture", ["VisualBertModel"] + HEADS)
def test_prediction_under_o1_stays_close_to_fp32(tiny, architecture, dtype):
    """Eval mode, no gradient, no labels: the heads' prediction path (the last layer computing the rows read only)."""
    model, inputs = build(architecture, tiny)
    features = {k: v for k, v in inputs.items() if "labels" not in k}
    model.eval()
    with paddle.no_grad():
        reference = model(**features, return_dict=True)
        with paddle.amp.auto_cast(dtype=dtype), o1_rounding(dtype) as rounding:
            output = model(**features, return_dict=True)
    assert rounding.calls > 0
    assert any(not np.array_equal(value.numpy(), output[key].numpy()) for key, value in reference.items())
    for key, value in reference.items():
        ref, out = value.numpy(), output[key].numpy()
        assert output[key].dtype == paddle.float32
        scored = ref > np.finfo("float32").min / 2  # region-to-phrase: masked boxes hold the dtype's minimum
        assert np.isfinite(out[scored]).all(), key
        assert rms(out[scored] - ref[scored]) <= tolerance(rounding, rms(ref[scored])), key


@pytest.mark.parametrize("architecture", HEADS)
def test_the_model_computes_in_its_parameters_dtype(tiny, architecture):
    """A model cast to float64 computes in float64 from the same inputs the data pipeline gives (the boxes cast to
    the model's dtype, as autocast does; float32 soft labels, int masks): no float32 is chosen for it anywhere."""
    model, inputs = build(architecture, tiny)
    model.eval()
    with paddle.no_grad():
        reference = float(model(**inputs, return_dict=True).loss)
    model.to(dtype="float64")
    inputs["visual_embeds"] = inputs["visual_embeds"].astype("float64")
    output = model(**inputs, return_dict=True)
    for key, value in output.items():
        if isinstance(value, paddle.Tensor):
            assert value.dtype == paddle.float64, key
    output.loss.backward()
    assert all(p.grad.dtype == paddle.float64 for p in model.parameters() if p.grad is not None)
    assert float(output.loss) == pytest.approx(reference, rel=1e-5)  # fp32's ~80 roundings of 2**-24: 5e-6


def test_the_trainer_runs_its_amp_step(sample_dir, tmp_path, tiny_config, entry_point, monkeypatch):
    """COCO pretraining with --use_amp, the amp dtype forced as on a GPU (trainer.amp_dtype: bfloat16 where
    supported, else float16 with GradScaler) and paddle.amp.auto_cast made to round as O1 (above): the first step's
    loss stays close to an fp32 run's and the run ends normally (the trainer saves no non-finite weights)."""
    run = entry_point("run_pretrain.py")
    config = tiny_config(initializer_range=0.3)  # BERT's 0.02 leaves a tiny model's loss at log(vocab), rounded or not

    def pretrain(out, *flags):
        argv = [
            "--dataset", "coco_captions", "--input_dir", os.path.join(sample_dir, "coco"), "--config", config,
            "--tokenizer_name_or_path", os.path.join(sample_dir, "vocab.txt"), "--output_dir", str(out),
            "--train_splits", "train", "--batch_size", "8", "--max_steps", "2", "--save_steps", "2",
            "--logging_steps", "1", "--num_workers", "0", "--seed", "1", *flags,
        ]  # fmt: skip
        assert run(argv) == 0
        return checkpoint.load_training_state(str(out / "checkpoint-2"))["state"]["history"][0]["loss"]

    reference = pretrain(tmp_path / "fp32")
    auto_cast, entered = paddle.amp.auto_cast, []  # entered: (enable, Rounding) of every autocast of the trainer

    @contextlib.contextmanager
    def rounding_auto_cast(enable=True, *args, dtype="float16", **kwargs):
        with auto_cast(enable, *args, dtype=dtype, **kwargs), o1_rounding(dtype) as rounding:
            yield
        entered.append((enable, rounding))

    monkeypatch.setattr(paddle.amp, "auto_cast", rounding_auto_cast)
    for dtype in DTYPES:
        entered.clear()
        monkeypatch.setattr(trainer_module, "amp_dtype", lambda device, dtype=dtype: dtype)
        loss = pretrain(tmp_path / dtype, "--use_amp")
        assert [(enable, r.dtype) for enable, r in entered] == [(True, dtype)] * 2  # one autocast a step
        assert all(r.calls > 0 for _, r in entered)
        assert np.isfinite(loss) and loss != reference
        assert abs(loss - reference) <= tolerance(entered[0][1], reference), (dtype, loss, reference)
