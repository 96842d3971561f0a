"""The CPU backend: fused fp32 CPU versions of the model's blocks (C++ kernels in kernels.cc, their gradients in
kernels.py, the blocks in layers.py), swapped into every VisualBERT model when it is built.

One switch: on by default; off with VISUALBERT_CPU_KERNELS=0 or `set_enabled(False)` (for a block: `with
disabled():`, `with switched(on):`). Off by itself on GPU, under AMP (autocast) and under paddle.jit.to_static, and
where the kernels cannot be built. Off, or where it does not apply, every block runs modeling.py's own path (Paddle's
operators), with the same numbers.
"""

from .control import disabled, enabled, runs_on, set_enabled, switched

__all__ = ["apply", "disabled", "enabled", "runs_on", "set_enabled", "switched"]


def apply(model):
    """Give every block of `model` that has a fused version that version: the same layer (parameters, buffers,
    state-dict names) under the fused subclass. Idempotent; VisualBertPretrainedModel calls it on every model built."""
    from .layers import FUSED  # layers imports modeling, which the package's registration imports first

    for layer in model.sublayers(include_self=True):
        fused = FUSED.get(type(layer))
        if fused is not None:
            layer.__class__ = fused
    return model
