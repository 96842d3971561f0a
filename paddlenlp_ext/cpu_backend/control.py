"""The backend's one public switch, and the test of whether it computes a given call."""

import contextlib
import os

import paddle

from . import kernels

_enabled = os.environ.get("VISUALBERT_CPU_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """Whether the backend is switched on: by default yes; off with VISUALBERT_CPU_KERNELS=0 or set_enabled(False)."""
    return _enabled


def set_enabled(on: bool):
    """Switch the backend on or off for this process; off, every model runs modeling.py's path (Paddle's operators),
    the path a GPU user runs."""
    global _enabled
    _enabled = bool(on)


@contextlib.contextmanager
def switched(on: bool):
    """`with switched(on):` runs the block with the backend on or off, then restores the previous state."""
    before = enabled()
    set_enabled(on)
    try:
        yield
    finally:
        set_enabled(before)


def disabled():
    """`with disabled():` runs modeling.py's path, then restores the previous state."""
    return switched(False)


def runs_on(*tensors) -> bool:
    """Whether the backend computes an operation on these tensors (None allowed): switched on, in eager mode (under
    paddle.jit.to_static the model is traced as modeling.py writes it), outside autocast (whose casts it would
    bypass), every tensor fp32 on the CPU, and the kernels built."""
    if not _enabled or not paddle.in_dynamic_mode() or paddle.amp.is_autocast_enabled():
        return False
    present = [t for t in tensors if t is not None]
    return all(t.place.is_cpu_place() and t.dtype == paddle.float32 for t in present) and kernels.available()
