"""The fp32 CPU kernels of kernels.cc with their gradients, built on first use.

`available()` says whether they could be built (a C++ compiler is needed; it takes about 20 s once, then the build is
cached under VISUALBERT_KERNEL_CACHE, default ~/.cache/visualbert_kernels). Where they cannot, the model runs
Paddle's own operators, with the same results, more slowly; one warning says why.

Each function here takes fp32 CPU tensors (Paddle hands a custom operator strided views made dense); layers.py
decides when they apply. The kernels use `runtime.math_threads()` OpenMP threads, the count Paddle's own math was
given.
"""

import contextlib
import hashlib
import os
import platform
import threading
import warnings
from typing import NamedTuple

import paddle

from .. import runtime

__all__ = [
    "available",
    "records_grad",
    "bias_gelu",
    "split_heads",
    "masked_softmax",
    "layer_norm",
    "bias_dropout_add_norm",
    "dropout",
    "dropout_matmul",
    "merge_heads",
    "RowLayout",
    "mkl_available",
    "attention",
]

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels.cc")
_FLAGS = ["-O3", "-march=native", "-fopenmp", "-Wno-unknown-pragmas"]
if platform.machine() in ("x86_64", "AMD64"):
    _FLAGS.append("-mprefer-vector-width=512")  # where AVX-512 exists, GCC's default 256-bit vectors leave half of it
# Paddle's MKL runs on Intel's OpenMP runtime; the kernels join the same thread pool rather than start GCC's, whose
# threads would contend with MKL's for the cores (GCC's -fopenmp code calls the GOMP_* entry points libiomp5 has).
_LINK = ["-l:libiomp5.so"]
if os.path.exists(os.path.join(os.path.dirname(paddle.__file__), "libs", "libmklml_intel.so")):
    # Paddle's x86 builds ship MKL: the fused attention of inference calls its sgemm (elsewhere it is not built)
    _FLAGS.append("-DVISUALBERT_MKL")
    _LINK.append("-l:libmklml_intel.so")
_BUILD_LOCK = threading.Lock()


def _cpu_features() -> str:
    """The CPU's model and instruction set extensions: -march=native code is only for CPUs that have them all."""
    cpu = runtime.cpu_info()
    return " ".join([cpu["model"] or platform.processor(), *sorted(cpu["flags"])])


def _build_directory(source: str) -> str:
    """One folder per source, flags, Paddle version and CPU, so that a change of any of them rebuilds (and a home
    directory shared by different machines holds a build for each)."""
    with open(source, "rb") as f:
        identity = [paddle.__version__, platform.machine(), _cpu_features()] + _FLAGS + _LINK
        digest = hashlib.sha256(f.read() + "\n".join(identity).encode())
    home = os.environ.get(
        "VISUALBERT_KERNEL_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "visualbert_kernels")
    )
    return os.path.join(home, digest.hexdigest()[:16])


@contextlib.contextmanager
def _output_to(path):
    """Send this process's stdout and stderr (file descriptors, so the compiler's too) to `path`."""
    with open(path, "w") as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            for fd in (1, 2):
                os.dup2(log.fileno(), fd)
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


_loaded = []  # [the module, or None where it could not be built], once tried


def _module():
    """The loaded kernels, or None after one warning if they cannot be built."""
    if not _loaded:
        with _BUILD_LOCK:
            if not _loaded:
                _loaded.append(build())
    return _loaded[0]


def build(source: str = SOURCE):
    """Build (or find built) and load the kernels of `source`; None, after one warning, where they cannot be built.
    Processes that start together (a distributed launch) take turns through a file lock: the first builds, the
    others load its build."""
    directory = _build_directory(source)
    log_path = os.path.join(directory, "build.log")
    try:
        import fcntl  # POSIX only: elsewhere the build is not attempted

        from paddle.utils.cpp_extension import load

        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with warnings.catch_warnings(), _output_to(log_path):
                warnings.simplefilter("ignore")
                return load(
                    name="visualbert_cpu_kernels", sources=[source], extra_cxx_cflags=_FLAGS,
                    extra_ldflags=_LINK, build_directory=directory, verbose=False,
                )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - any failure to build means: run Paddle's operators instead
        warnings.warn(
            f"VisualBERT's CPU kernels could not be built ({type(error).__name__}: {error}; log: {log_path}); "
            "running Paddle's own CPU operators, which are slower",
            stacklevel=3,
        )
        return None


def available() -> bool:
    """Whether the kernels are built and loaded (building them on the first call)."""
    return _module() is not None


def _threads() -> int:
    return runtime.math_threads()


def records_grad(*tensors):
    """Whether autograd must see an operation on these tensors (None allowed): recording is on and one of them wants
    a gradient."""
    return paddle.is_grad_enabled() and any(t is not None and not t.stop_gradient for t in tensors)


def _remember_inputs(ctx, *tensors):
    """Record which of a PyLayer's tensor inputs want a gradient: Paddle requires None for the others."""
    ctx.needs_grad = [not tensor.stop_gradient for tensor in tensors]


def _needed(ctx, grads):
    return tuple(g if needed else None for g, needed in zip(grads, ctx.needs_grad))


class _BiasGelu(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, bias):
        ctx.save_for_backward(x, bias)
        _remember_inputs(ctx, x, bias)
        return _module().visualbert_bias_gelu(x, bias, _threads())

    @staticmethod
    def backward(ctx, grad):
        x, bias = ctx.saved_tensor()
        return _needed(ctx, _module().visualbert_bias_gelu_backward(x, bias, grad, _threads()))


def bias_gelu(x, bias):
    """F.gelu(x + bias), the exact (erf) form, for x [..., I] and bias [I]: a linear layer's bias and activation
    in one pass."""
    if records_grad(x, bias):
        return _BiasGelu.apply(x, bias)
    return _module().visualbert_bias_gelu(x, bias, _threads())


class RowLayout(NamedTuple):
    """The real rows of a padded batch [B, S, ...] held as [N, ...]: positions int64 [N], each row's place b * S + s;
    slots int64 [B * S], each place's row or -1 at padding; length S."""

    positions: paddle.Tensor
    slots: paddle.Tensor
    length: int

    @classmethod
    def of(cls, real):
        """The layout of the True entries of real, bool [B, S]."""
        flat = real.reshape([-1])
        positions = paddle.nonzero(flat).reshape([-1])
        slots = paddle.where(flat, paddle.cumsum(flat.astype("int64")) - 1, paddle.full_like(flat, -1, dtype="int64"))
        return cls(positions, slots, real.shape[1])


class _SplitHeads(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, bias, heads, scale, layout):
        ctx.scale, ctx.positions = scale, None if layout is None else layout.positions
        _remember_inputs(ctx, x, bias)
        return _split_heads(x, bias, heads, scale, layout)

    @staticmethod
    def backward(ctx, grad):
        return _needed(ctx, _module().visualbert_split_heads_backward(grad, ctx.positions, ctx.scale, _threads()))


def _split_heads(x, bias, heads, scale, layout):
    slots, length = (None, 0) if layout is None else (layout.slots, layout.length)
    return _module().visualbert_split_heads(x, bias, slots, heads, length, scale, _threads())


def split_heads(x, bias, heads, scale=1.0, layout=None):
    """(x + bias) * scale from [B, S, heads * D] to [B, heads, S, D]: the bias of a query, key or value projection,
    the attention scale and the head layout in one pass, keeping nothing for the backward. With a RowLayout, x is
    the batch's real rows [N, heads * D] and the padding is zeros."""
    if records_grad(x, bias):
        return _SplitHeads.apply(x, bias, heads, scale, layout)
    return _split_heads(x, bias, heads, scale, layout)


class _MergeHeads(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, layout):
        ctx.heads, ctx.length = x.shape[1], x.shape[2]
        ctx.slots = None if layout is None else layout.slots
        return _module().visualbert_merge_heads(x, None if layout is None else layout.positions, _threads())

    @staticmethod
    def backward(ctx, grad):
        return _module().visualbert_merge_heads_backward(grad, ctx.slots, ctx.heads, ctx.length, _threads())


def merge_heads(x, layout=None):
    """The attention's context [B, heads, S, D] back to [B, S, heads * D], or with a RowLayout to the real rows
    [N, heads * D]; keeps nothing for the backward."""
    if records_grad(x):
        return _MergeHeads.apply(x, layout)
    return _module().visualbert_merge_heads(x, None if layout is None else layout.positions, _threads())


class _MaskedSoftmax(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, scores, mask):
        probs = _module().visualbert_masked_softmax(scores, mask, _threads())
        ctx.save_for_backward(probs)
        return probs

    @staticmethod
    def backward(ctx, grad):
        (probs,) = ctx.saved_tensor()
        return _module().visualbert_softmax_backward(probs, grad, _threads()), None


def masked_softmax(scores, mask):
    """softmax(scores + mask, axis=-1) for scores [B, heads, Q, K] and an additive mask [B or 1, 1, Q or 1, K]."""
    if records_grad(scores):
        return _MaskedSoftmax.apply(scores, mask)
    return _module().visualbert_masked_softmax(scores, mask, _threads())


class _LayerNorm(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        out, mean, rstd = _module().visualbert_layer_norm(x, weight, bias, epsilon, _threads())
        ctx.save_for_backward(x, weight, mean, rstd)
        _remember_inputs(ctx, x, weight, bias)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, mean, rstd = ctx.saved_tensor()
        grads = _module().visualbert_layer_norm_backward(x, weight, mean, rstd, grad, _threads())
        return _needed(ctx, grads)


def layer_norm(x, weight, bias, epsilon):
    """F.layer_norm over the last axis of x with weight and bias."""
    if records_grad(x, weight, bias):
        return _LayerNorm.apply(x, weight, bias, epsilon)
    return _module().visualbert_layer_norm(x, weight, bias, epsilon, _threads())[0]


def _dropout_draw(p):
    """The kernel's threshold round(p * 2^32) (0: keep everything), one seed from Paddle's generator (so paddle.seed
    and the saved RNG state govern the masks), and the scale that keeps the expectation: 2^32 / (2^32 - threshold)."""
    threshold = round(p * 2**32)
    if threshold == 0:
        return 0, 0, 1.0
    high, low = paddle.randint(0, 2**31 - 1, [2], dtype="int64").tolist()
    return (high << 31) | low, threshold, 2**32 / (2**32 - threshold)


def dropout_threshold_ok(p) -> bool:
    """Whether the kernels take this dropout rate: they drop a fraction p' = round(p * 2^32) / 2^32 < 1."""
    return 0 <= round(p * 2**32) < 2**32


class _BiasDropoutAddNorm(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, bias, residual, weight, norm_bias, epsilon, p, positions):
        seed, ctx.threshold, _ = _dropout_draw(p)
        out, *saved = _module().visualbert_bias_dropout_add_norm(
            x, bias, residual, weight, norm_bias, positions, epsilon, seed, ctx.threshold, 1, _threads()
        )
        ctx.save_for_backward(weight, *saved)
        _remember_inputs(ctx, x, bias, residual, weight, norm_bias)
        return out

    @staticmethod
    def backward(ctx, grad):
        weight, normalised, mean, rstd, mask = ctx.saved_tensor()
        grads = _module().visualbert_bias_dropout_add_norm_backward(
            normalised, weight, mean, rstd, mask, grad, ctx.threshold, _threads()
        )
        return _needed(ctx, grads)


def bias_dropout_add_norm(x, bias, residual, weight, norm_bias, epsilon, p, positions=None):
    """F.layer_norm(dropout(x + bias, p) + residual, weight, norm_bias, epsilon) over the last axis: the end of a
    transformer block (a linear layer's bias, dropout, the residual connection, LayerNorm) in one pass. p = 0 (as in
    evaluation) drops nothing. Where x [N, H] is the real rows of a padded batch, positions (a RowLayout's) gives the
    padded batch's dropout mask on those rows."""
    if records_grad(x, bias, residual, weight, norm_bias):
        return _BiasDropoutAddNorm.apply(x, bias, residual, weight, norm_bias, epsilon, p, positions)
    seed, threshold, _ = _dropout_draw(p)
    return _module().visualbert_bias_dropout_add_norm(
        x, bias, residual, weight, norm_bias, positions, epsilon, seed, threshold, 0, _threads()
    )[0]


class _Dropout(paddle.autograd.PyLayer):
    @staticmethod
    def forward(ctx, x, p):
        seed, threshold, ctx.scale = _dropout_draw(p)
        out, mask = _module().visualbert_dropout(x, seed, threshold, _threads())
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensor()
        return _module().visualbert_dropout_apply(grad, mask, ctx.scale, _threads())


def dropout(x, p):
    """Inverted dropout at rate p' = round(p * 2^32) / 2^32 (|p' - p| < 1.2e-10): each element is zeroed with
    probability p', else scaled by 1 / (1 - p'). The backward keeps a one-byte mask per element."""
    if records_grad(x):
        return _Dropout.apply(x, p)
    seed, threshold, _ = _dropout_draw(p)
    return _module().visualbert_dropout(x, seed, threshold, _threads())[0]


class _DropoutMatmul(paddle.autograd.PyLayer):
    """dropout(probs) @ value keeping probs (which the softmax backward keeps anyway), the one-byte mask and value,
    not the dropped probabilities: the backward recomputes them."""

    @staticmethod
    def forward(ctx, probs, value, p):
        seed, threshold, ctx.scale = _dropout_draw(p)
        dropped, mask = _module().visualbert_dropout(probs, seed, threshold, _threads())
        ctx.save_for_backward(probs, mask, value)
        _remember_inputs(ctx, probs, value)
        return paddle.matmul(dropped, value)

    @staticmethod
    def backward(ctx, grad):
        probs, mask, value = ctx.saved_tensor()
        apply = _module().visualbert_dropout_apply
        needs_probs, needs_value = ctx.needs_grad
        grad_probs = grad_value = None
        if needs_probs:
            grad_probs = apply(paddle.matmul(grad, value, transpose_y=True), mask, ctx.scale, _threads())
        if needs_value:
            grad_value = paddle.matmul(apply(probs, mask, ctx.scale, _threads()), grad, transpose_x=True)
        return grad_probs, grad_value


def dropout_matmul(probs, value, p):
    """dropout(probs, p) @ value."""
    if records_grad(probs, value):
        return _DropoutMatmul.apply(probs, value, p)
    return paddle.matmul(dropout(probs, p), value)


def mkl_available() -> bool:
    """Whether `attention`, which calls MKL's sgemm, is built: it is where Paddle ships MKL (its x86 builds)."""
    return available() and hasattr(_module(), "visualbert_attention")


def attention(query, key, value, query_bias, key_bias, value_bias, heads, scale, mask=None, offsets=None):
    """softmax(((query + query_bias) * scale) @ (key + key_bias)^T + mask) @ (value + value_bias) per sequence and
    head, for inference: no dropout, no gradient. The projections come before their bias, H = heads * D.

    A padded batch: query [B, Q, H], key and value [B, K, H], mask additive [B or 1, 1, Q or 1, K].
    A batch without its padding: query [Nq, H], key and value [Nk, H], every sequence's rows one after the other, no
    mask, offsets = (query_offsets, key_offsets), int64 [B + 1]: sequence b's queries are rows query_offsets[b] to
    query_offsets[b + 1], its keys and values rows key_offsets[b] to key_offsets[b + 1].
    Returns the context, shaped as the query."""
    if offsets is None:
        steps = paddle.arange(query.shape[0] + 1, dtype="int64")
        offsets = (steps * query.shape[1], steps * key.shape[1])
    return _module().visualbert_attention(
        query, key, value, query_bias, key_bias, value_bias, *offsets, mask, heads, scale, _threads()
    )
